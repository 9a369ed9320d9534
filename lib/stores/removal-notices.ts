import * as v from "valibot";
import { parseStored, storeCall, type Redis } from "../shared/redis.js";
import { StoredAddressSchema, type Address } from "../shared/address.js";

/** A member told they no longer qualify, and from when they may be removed. */
export interface RemovalNotice {
  /** When the warning was sent (ISO 8601). */
  readonly warnedAt: string;
  /** The first re-check at or after this time removes them if they still do not qualify (ISO 8601). */
  readonly removeAfter: string;
  readonly reason: string;
}

const NoticeSchema = v.object({ warnedAt: v.pipe(v.string(), v.isoTimestamp()), removeAfter: v.pipe(v.string(), v.isoTimestamp()), reason: v.string() });

/** The warnings standing per group (one Redis hash per group, a field per member). Methods may throw StoreUnavailableError. */
export interface RemovalNoticeStore {
  /** Every standing notice of a group by address; a field that does not parse is left out (that member is warned again). */
  list(groupId: string): Promise<Map<Address, RemovalNotice>>;
  set(groupId: string, address: Address, notice: RemovalNotice): Promise<void>;
  /** Ends the notices of these members (they qualify again, or are out of the group). */
  clear(groupId: string, addresses: readonly Address[]): Promise<void>;
}

/** Removal notices under `keyPrefix`. */
export function createRemovalNoticeStore(redis: Redis, keyPrefix: string): RemovalNoticeStore {
  const key = (groupId: string) => `${keyPrefix}:notices:${groupId}`;
  return {
    async list(groupId) {
      const reply: unknown = await storeCall("read removal notices", () => redis.hgetall(key(groupId)));
      // Without automatic deserialization the client hands back HGETALL's flat [field, value, …] array.
      const pairs: [string, unknown][] = Array.isArray(reply)
        ? Array.from({ length: reply.length / 2 }, (_, i) => [String(reply[2 * i]), reply[2 * i + 1]])
        : Object.entries((reply ?? {}) as Record<string, unknown>);
      const out = new Map<Address, RemovalNotice>();
      for (const [field, value] of pairs) {
        const notice = parseStored(NoticeSchema, value);
        if (notice && v.is(StoredAddressSchema, field)) out.set(field, notice);
      }
      return out;
    },
    async set(groupId, address, notice) {
      await storeCall("write removal notice", () => redis.hset(key(groupId), { [address]: JSON.stringify(notice) }));
    },
    async clear(groupId, addresses) {
      if (addresses.length === 0) return;
      await storeCall("clear removal notices", () => redis.hdel(key(groupId), ...addresses));
    },
  };
}
