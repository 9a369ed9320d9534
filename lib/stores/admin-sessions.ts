import { createHash, randomBytes } from "node:crypto";
import * as v from "valibot";
import { parseStored, storeCall, type Redis } from "../shared/redis.js";
import { StoredAddressSchema, type Address } from "../shared/address.js";

/** How long a dashboard session lasts after sign-in (no sliding renewal: an admin signs in again each working day). */
export const ADMIN_SESSION_TTL_SECONDS = 8 * 3600;

/** A signed-in admin. */
export interface AdminSession {
  readonly address: Address;
  readonly expiresAt: string;
}

const SessionSchema = v.object({ address: StoredAddressSchema, expiresAt: v.string() });

/** Dashboard sessions in Redis, looked up by the cookie's token. Methods may throw StoreUnavailableError. */
export interface AdminSessionStore {
  /** Starts a session for `address`; answers the token (only its hash is stored) and when it ends. */
  create(address: Address, now: Date): Promise<{ token: string; session: AdminSession }>;
  /** The session behind a token, or null (unknown, expired or signed out). */
  get(token: string): Promise<AdminSession | null>;
  /** Ends a session (signing out); unknown tokens are ignored. */
  delete(token: string): Promise<void>;
}

// Stored under the token's hash: a copy of Redis (a backup, a support dump) holds no usable session.
const tokenHash = (token: string) => createHash("sha256").update(token, "utf8").digest("base64url");

/** Sessions under `keyPrefix`, each expiring with its Redis key. */
export function createAdminSessionStore(redis: Redis, keyPrefix: string): AdminSessionStore {
  const key = (token: string) => `${keyPrefix}:admin:session:${tokenHash(token)}`;
  return {
    async create(address, now) {
      const token = randomBytes(32).toString("base64url");
      const session: AdminSession = { address, expiresAt: new Date(now.getTime() + ADMIN_SESSION_TTL_SECONDS * 1000).toISOString() };
      await storeCall("save admin session", () => redis.set(key(token), JSON.stringify(session), { ex: ADMIN_SESSION_TTL_SECONDS }));
      return { token, session };
    },
    async get(token) {
      const raw = await storeCall("read admin session", () => redis.get<string>(key(token)));
      return parseStored(SessionSchema, raw) ?? null;
    },
    async delete(token) {
      await storeCall("end admin session", () => redis.del(key(token)));
    },
  };
}
