import { createHash, randomBytes } from "node:crypto";
import * as v from "valibot";
import { parseStored, storeCall, type Redis } from "../shared/redis.js";
import { StoredAddressSchema, type Address } from "../shared/address.js";

/** How long a sign-in message may wait for its signature. */
export const CHALLENGE_TTL_SECONDS = 300;
/** How long a used nonce is remembered, so a replay is told apart from a message we never issued. */
const USED_TTL_SECONDS = 3600;

/** What the server remembers about a sign-in message it issued. */
export interface IssuedChallenge {
  readonly linkId: string;
  readonly groupId: string;
  readonly address: Address;
  readonly chainId: number;
  /** SHA-256 of the exact message text: only that text is accepted back. */
  readonly messageHash: string;
  readonly expiresAt: string;
}

const IssuedSchema = v.object({
  linkId: v.string(),
  groupId: v.string(),
  address: StoredAddressSchema,
  chainId: v.number(),
  messageHash: v.string(),
  expiresAt: v.string(),
});

/** What a nonce is: waiting for its signature, already used, or unknown (never issued, or expired). */
export type NonceState = { readonly state: "issued"; readonly challenge: IssuedChallenge } | { readonly state: "used" } | { readonly state: "unknown" };

// Consume = delete the challenge and remember the nonce as used, in one step: of two racing
// requests carrying the same signed message, exactly one gets "ok".
const CONSUME = `
local cur = redis.call('GET', KEYS[1])
if not cur then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 'used' end
  return 'unknown'
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return 'ok'
`;

/** Single-use sign-in nonces in Redis. */
export interface ChallengeStore {
  /** A fresh nonce: 128 random bits as hex (EIP-4361 wants at least 8 alphanumerics). */
  newNonce(): string;
  /** Remembers an issued challenge for {@link CHALLENGE_TTL_SECONDS}. */
  save(nonce: string, challenge: IssuedChallenge): Promise<void>;
  /** Looks a nonce up without using it. */
  peek(nonce: string): Promise<NonceState>;
  /** Uses a nonce: "ok" exactly once, then "used". */
  consume(nonce: string): Promise<"ok" | "used" | "unknown">;
}

/** A challenge store over Upstash Redis; methods may throw {@link import("../shared/errors.js").StoreUnavailableError}. */
export function createChallengeStore(redis: Redis, keyPrefix: string): ChallengeStore {
  const key = (nonce: string) => `${keyPrefix}:siwe:nonce:${nonce}`;
  const usedKey = (nonce: string) => `${keyPrefix}:siwe:used:${nonce}`;
  return {
    newNonce: () => randomBytes(16).toString("hex"),
    async save(nonce, challenge) {
      await storeCall("save sign-in challenge", () => redis.set(key(nonce), JSON.stringify(challenge), { ex: CHALLENGE_TTL_SECONDS }));
    },
    async peek(nonce) {
      const raw = await storeCall("read sign-in challenge", () => redis.get<string>(key(nonce)));
      const challenge = typeof raw === "string" ? parseStored(IssuedSchema, raw) : undefined;
      if (challenge) return { state: "issued", challenge };
      // Only a miss needs the second look: was it used, or never ours?
      const used = await storeCall("read used nonce", () => redis.exists(usedKey(nonce)));
      return used === 1 ? { state: "used" } : { state: "unknown" };
    },
    async consume(nonce) {
      const reply = await storeCall("use sign-in nonce", () =>
        redis.eval<string[], string>(CONSUME, [key(nonce), usedKey(nonce)], [String(USED_TTL_SECONDS)]),
      );
      return reply === "ok" || reply === "used" ? reply : "unknown";
    },
  };
}

/** SHA-256 hex of a message's exact text. */
export function hashMessage(message: string): string {
  return createHash("sha256").update(message, "utf8").digest("hex");
}
