import * as v from "valibot";
import type { XmtpProtocol } from "../../config.js";
import { parseStored, storeCall, type Redis } from "../../shared/redis.js";

const SwitchSchema = v.object({ protocol: v.string(), reason: v.string(), at: v.string() });

/**
 * Which of XMTP's protocols the installation runs on, kept in Redis so that every instance of a deployment follows a
 * switch at once: set to "d14n" when V3 announces its retirement (and a gateway is configured) or by an operator
 * (`npm run xmtp:network -- d14n`). Unset: the deployment's configured start (`XMTP_NETWORK`).
 */
export interface NetworkChoice {
  /** The protocol recorded, or null when none is. @throws {import("../../shared/errors.js").StoreUnavailableError} */
  read(): Promise<XmtpProtocol | null>;
  /** Records the protocol every instance uses from now on. @throws {import("../../shared/errors.js").StoreUnavailableError} */
  write(protocol: XmtpProtocol, reason: string): Promise<void>;
  /** When and why it was last switched, or null. */
  history(): Promise<{ protocol: string; reason: string; at: string } | null>;
}

/** The choice under `<keyPrefix>:xmtp:network`. */
export function createNetworkChoice(redis: Redis, keyPrefix: string, now: () => Date = () => new Date()): NetworkChoice {
  const key = `${keyPrefix}:xmtp:network`;
  const noteKey = `${key}:switched`;
  return {
    read: async () => {
      const raw = await storeCall("read XMTP network", () => redis.get<string>(key));
      // Anything else (a hand-written value, say) is no choice at all: the configured start applies.
      return raw === "d14n" || raw === "v3" ? raw : null;
    },
    write: async (protocol, reason) => {
      const tx = redis.multi();
      tx.set(key, protocol);
      tx.set(noteKey, JSON.stringify({ protocol, reason, at: now().toISOString() }));
      await storeCall("record XMTP network", () => tx.exec());
    },
    history: async () => {
      const raw = await storeCall("read XMTP network switch", () => redis.get<string>(noteKey));
      return parseStored(SwitchSchema, raw) ?? null;
    },
  };
}
