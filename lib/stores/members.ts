import * as v from "valibot";
import { StoredAddressSchema, type Address } from "../shared/address.js";
import { FencedWriteError } from "../shared/errors.js";
import { parseStored, storeCall, type Redis, type WriteFence } from "../shared/redis.js";

/**
 * How a member got in: through the rules (webhook or join page), added by the operator (exempt from
 * re-verification), or "reconciled": found in the group on XMTP without a record (a commit that landed when what
 * followed it failed), re-verified like anyone who joined through the rules.
 */
export type MemberVia = "webhook" | "join-page" | "operator" | "reconciled";

/**
 * A member as this backend recorded it. A record whose value does not parse reads as `via: "unknown"` (and no
 * join time): still a member, and re-verified like anyone who joined through the rules (never taken for exempt).
 */
export interface MemberRecord {
  readonly address: Address;
  readonly joinedAt: string | null;
  readonly via: MemberVia | "unknown";
}

/**
 * How a record is written: "replace" (they were just added: this is how they joined), "keep" (already a member:
 * an existing record stays as it is), or "exempt" (the operator vouches for them: via becomes "operator",
 * an existing join time stays).
 */
export type RecordMode = "replace" | "keep" | "exempt";

/** Who joined each group, when and how (a Redis hash per group). Methods may throw StoreUnavailableError. */
export interface MemberStore {
  /** Records a member (see {@link RecordMode}). */
  record(groupId: string, address: Address, via: MemberVia, mode: RecordMode): Promise<void>;
  /**
   * Records several members in one round trip; under `fence`, only while it is the newest (else nothing is written).
   * @throws {FencedWriteError} a newer lease holder exists.
   */
  recordMany(groupId: string, records: readonly { address: Address; via: MemberVia; mode: RecordMode }[], fence?: WriteFence): Promise<void>;
  remove(groupId: string, addresses: readonly Address[]): Promise<void>;
  list(groupId: string): Promise<MemberRecord[]>;
  count(groupId: string): Promise<number>;
}

const StoredMember = v.object({ joinedAt: v.pipe(v.string(), v.isoTimestamp()), via: v.picklist(["webhook", "join-page", "operator", "reconciled"]) });

// Records members (KEYS[1]) as each one's mode says (ARGV: the time, then triples of address, via, mode), in one
// step with the fence check when there is one (KEYS[2], ARGV[1]: the holder's fencing number; "" for none).
// The operator's add ("exempt"): via "operator", keeping the time they first joined if they were already recorded.
const RECORD = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 3 do
  local address, via, mode = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if mode == 'replace' then
    redis.call('HSET', KEYS[1], address, cjson.encode({joinedAt = ARGV[2], via = via}))
  elseif mode == 'keep' then
    redis.call('HSETNX', KEYS[1], address, cjson.encode({joinedAt = ARGV[2], via = via}))
  else
    local cur = redis.call('HGET', KEYS[1], address)
    local joinedAt = ARGV[2]
    if cur then
      local ok, rec = pcall(cjson.decode, cur)
      if ok and type(rec) == 'table' and type(rec.joinedAt) == 'string' then joinedAt = rec.joinedAt end
    end
    redis.call('HSET', KEYS[1], address, cjson.encode({joinedAt = joinedAt, via = 'operator'}))
  end
end
return 1
`;

/** A member store under `keyPrefix`. */
export function createMemberStore(redis: Redis, keyPrefix: string, now: () => Date = () => new Date()): MemberStore {
  const key = (groupId: string) => `${keyPrefix}:members:${groupId}`;
  const store: MemberStore = {
    record: (groupId, address, via, mode) => store.recordMany(groupId, [{ address, via, mode }]),
    async recordMany(groupId, records, fence) {
      if (records.length === 0) return;
      const at = now().toISOString();
      const written = await storeCall("record members", () =>
        redis.eval<string[], number>(
          RECORD,
          [key(groupId), fence?.key ?? key(groupId)],
          [fence ? String(fence.value) : "", at, ...records.flatMap(({ address, via, mode }) => [address, via, mode])],
        ),
      );
      if (Number(written) !== 1) throw new FencedWriteError("Member records not written: a newer XMTP lease holder exists");
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
      // A field that is not a lowercase address is not a member we recorded; a value of another shape is one
      // whose record was damaged.
      return pairs.flatMap(([address, raw]): MemberRecord[] => {
        if (!v.is(StoredAddressSchema, address)) return [];
        return [{ address, ...(parseStored(StoredMember, raw) ?? { joinedAt: null, via: "unknown" }) }];
      });
    },
    count: (groupId) => storeCall("count members", () => redis.hlen(key(groupId))),
  };
  return store;
}
