import type { Redis } from "../redis.js";
import { storeCall } from "../redis.js";

/** How a member got in: through the rules (webhook or join page) or added by the operator (exempt from re-verification). */
export type MemberVia = "webhook" | "join-page" | "operator";

/** A member as this backend recorded it. */
export interface MemberRecord {
  readonly address: string;
  readonly joinedAt: string;
  readonly via: MemberVia;
}

/** Who joined each group, when and how (a Redis hash per group). Methods may throw StoreUnavailableError. */
export interface MemberStore {
  /** Records a member; keeps the first join time if already recorded. */
  record(groupId: string, address: string, via: MemberVia): Promise<void>;
  remove(groupId: string, addresses: readonly string[]): Promise<void>;
  list(groupId: string): Promise<MemberRecord[]>;
  count(groupId: string): Promise<number>;
}

/** A member store under `keyPrefix`. */
export function createMemberStore(redis: Redis, keyPrefix: string, now: () => Date = () => new Date()): MemberStore {
  const key = (groupId: string) => `${keyPrefix}:members:${groupId}`;
  return {
    async record(groupId, address, via) {
      await storeCall("record member", () => redis.hsetnx(key(groupId), address, JSON.stringify({ joinedAt: now().toISOString(), via })));
    },
    async remove(groupId, addresses) {
      if (addresses.length > 0) await storeCall("remove members", () => redis.hdel(key(groupId), ...addresses));
    },
    async list(groupId) {
      const reply: unknown = await storeCall("list members", () => redis.hgetall(key(groupId)));
      // Without automatic deserialization the client hands back HGETALL's flat [field, value, …] array.
      const pairs: [string, unknown][] = Array.isArray(reply)
        ? Array.from({ length: reply.length / 2 }, (_, i) => [String(reply[2 * i]), reply[2 * i + 1]])
        : Object.entries((reply ?? {}) as Record<string, unknown>);
      return pairs.flatMap(([address, raw]) => {
        try {
          const parsed = (typeof raw === "string" ? JSON.parse(raw) : raw) as { joinedAt: string; via: MemberVia };
          return [{ address, joinedAt: parsed.joinedAt, via: parsed.via }];
        } catch {
          return [];
        }
      });
    },
    count: (groupId) => storeCall("count members", () => redis.hlen(key(groupId))),
  };
}
