import * as v from "valibot";
import { storeCall, type Redis } from "../shared/redis.js";
import type { Address } from "../shared/address.js";

/** How long a found inbox is remembered (an address rarely moves to another inbox; a refused add forgets it sooner). */
const FOUND_TTL_S = 24 * 3600;
/** How long "no inbox" is remembered: the person is told to open an XMTP app, and will try again soon. */
const NONE_TTL_S = 60;
const NONE = "-";

// Stored: the inbox id (64 hex), or NONE.
const CachedSchema = v.union([v.pipe(v.literal(NONE), v.transform(() => null)), v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))]);

/** Which XMTP inbox an address belongs to, remembered in Redis (a lookup is a network round trip). */
export interface InboxCache {
  /** The remembered inbox (null: remembered as having none), or undefined when not remembered. */
  get(address: Address): Promise<string | null | undefined>;
  set(address: Address, inboxId: string | null): Promise<void>;
  forget(address: Address): Promise<void>;
}

/** An inbox cache under `keyPrefix`; a cache that cannot be reached is skipped (the lookup is asked instead). */
export function createInboxCache(redis: Redis, keyPrefix: string): InboxCache {
  const key = (address: Address) => `${keyPrefix}:inbox:${address}`;
  return {
    async get(address) {
      const parsed = v.safeParse(CachedSchema, await redis.get<string>(key(address)).catch(() => null));
      return parsed.success ? parsed.output : undefined;
    },
    async set(address, inboxId) {
      await redis.set(key(address), inboxId ?? NONE, { ex: inboxId ? FOUND_TTL_S : NONE_TTL_S }).catch(() => undefined);
    },
    async forget(address) {
      await storeCall("forget inbox", () => redis.del(key(address))).catch(() => undefined);
    },
  };
}
