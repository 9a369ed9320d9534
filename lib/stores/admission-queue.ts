import * as v from "valibot";
import { FencedWriteError } from "../shared/errors.js";
import { parseStored, storeCall, type Redis, type WriteFence } from "../shared/redis.js";
import { StoredAddressSchema, type Address } from "../shared/address.js";

/** How an admission ended: the membership outcomes, or "unavailable" (XMTP failed: ask again), or "group-gone". */
export type AdmissionOutcome = "added" | "already-member" | "not-on-xmtp" | "full" | "refused" | "unavailable" | "group-gone";

/** A wallet waiting to be added to a group. */
export interface PendingAdmission {
  readonly address: Address;
  readonly inboxId: string;
  /** The door it came through (for the member record and the audit log). */
  readonly source: "webhook" | "join-page";
  readonly at: string;
}

/**
 * How long an admission may wait to be served: its request gives up after 25 s, and a person who asks again
 * later is asked again afresh (an admission long forgotten must not add someone the operator removed since).
 */
export const MAX_ADMISSION_AGE_MS = 60_000;
const PENDING_TTL_MS = MAX_ADMISSION_AGE_MS * 2;
/**
 * The longest a request may wait for its admission's outcome: a whole function run (vercel.json's maxDuration),
 * since a waiter can be held behind the per-instance mutex and the lease for most of it.
 */
export const MAX_WAITER_MS = 60_000;

/**
 * How long an ended admission answers: every waiter must still find the outcome that was decided for it, and a
 * person whose request gave up (after 25 s) can ask again and be answered from it. Only "added" and
 * "already-member" answer a new request (see ENQUEUE): any other outcome is asked again at once however long it is
 * kept. A removal forgets it at once (see {@link AdmissionQueue.forget}).
 */
export const OUTCOME_TTL_MS = 2 * MAX_WAITER_MS;

const RecordSchema = v.variant("state", [
  v.object({ state: v.literal("pending"), inboxId: v.string(), source: v.picklist(["webhook", "join-page"]), at: v.string(), atMs: v.number() }),
  v.object({ state: v.literal("done"), outcome: v.picklist(["added", "already-member", "not-on-xmtp", "full", "refused", "unavailable", "group-gone"]), at: v.string() }),
]);
type AdmissionRecord = v.InferOutput<typeof RecordSchema>;

// Redis's own clock in ms: every instance compares ages on the same clock, whatever its own says.
const NOW_MS = `
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// Queue an admission unless one is waiting already and is not too old (then the caller waits for that one), or
// one just ended with the wallet in the group (then that is the answer: a retry of a request that gave up).
// Other ended ones are asked again. The record (ARGV[1]) gets its atMs here. ARGV[5]: the oldest a waiting one may be.
const ENQUEUE = NOW_MS + `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if ok and type(rec) == 'table' then
    if rec.state == 'pending' and tonumber(rec.atMs or 0) >= nowMs - tonumber(ARGV[5]) then return cur end
    if rec.outcome == 'added' or rec.outcome == 'already-member' then return cur end
  end
end
local fresh = cjson.decode(ARGV[1])
fresh.atMs = nowMs
local value = cjson.encode(fresh)
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return value
`;

// The groups (KEYS[1]) by when the first in line of each was queued (its record's atMs; 0 when unreadable, so a
// group whose head is stale is visited first and cleaned up). ARGV: the queue and record key prefixes.
const OLDEST_FIRST = `
local out = {}
for _, g in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local at = 0
  local head = redis.call('LINDEX', ARGV[1] .. g, 0)
  if head then
    local cur = redis.call('GET', ARGV[2] .. g .. ':' .. head)
    if cur then
      local ok, rec = pcall(cjson.decode, cur)
      if ok and type(rec) == 'table' and tonumber(rec.atMs) then at = tonumber(rec.atMs) end
    end
  end
  table.insert(out, {g, at})
end
table.sort(out, function(a, b) return a[2] < b[2] end)
local ids = {}
for i, pair in ipairs(out) do ids[i] = pair[1] end
return ids
`;

// Shared ending: a group whose queue (KEYS[1]) is empty leaves the set of groups to serve (KEYS[2], ARGV[1]: the group).
const LEAVE_SET_IF_EMPTY = `
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
`;

// End admissions: each record (KEYS[4…]) becomes its outcome and its address (ARGV: group id, the fencing number
// or "" for none, then triples of address, record, ttl) leaves the queue; nothing at all when the fence (KEYS[3])
// has moved on.
const COMPLETE = `
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then return 0 end
for i = 4, #KEYS do
  local a = 3 + (i - 4) * 3
  redis.call('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[a + 2])
  redis.call('LREM', KEYS[1], 1, ARGV[a])
end
` + LEAVE_SET_IF_EMPTY;

// Queue entries whose admission (record KEYS[3…], address ARGV[3…]) is no longer waiting (it expired, ended
// while still in line, or is older than ARGV[2]): out of the way, and a too old one forgotten.
const DROP = `
for i = 3, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  local ok, rec = false, nil
  if cur then ok, rec = pcall(cjson.decode, cur) end
  local waiting = ok and type(rec) == 'table' and rec.state == 'pending'
  if not waiting or tonumber(rec.atMs or 0) < tonumber(ARGV[2]) then
    redis.call('LREM', KEYS[1], 0, ARGV[i])
    if waiting then redis.call('DEL', KEYS[i]) end
  end
end
` + LEAVE_SET_IF_EMPTY;

// The wallets (records KEYS[3…], addresses ARGV[3…]) were removed: an ended admission is deleted, and one still
// waiting leaves the queue and ends (ARGV[2]: that record) so it never adds them back; its waiter answers 503.
const FORGET = `
for i = 3, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur then
    local ok, rec = pcall(cjson.decode, cur)
    if ok and type(rec) == 'table' and rec.state == 'pending' then
      redis.call('SET', KEYS[i], ARGV[2], 'PX', ${OUTCOME_TTL_MS})
      redis.call('LREM', KEYS[1], 0, ARGV[i])
    else
      redis.call('DEL', KEYS[i])
    end
  end
end
` + LEAVE_SET_IF_EMPTY;

/**
 * Admissions waiting for XMTP, per group, in Redis: any instance queues them, whichever holds the XMTP lease
 * serves them (in shared commits), and each waiting request reads its own outcome. Methods may throw
 * {@link import("../shared/errors.js").StoreUnavailableError}.
 */
export interface AdmissionQueue {
  /** Queues an admission; answers "queued", or the outcome it already has (see ENQUEUE). */
  enqueue(groupId: string, admission: Omit<PendingAdmission, "at">): Promise<{ state: "queued" } | { state: "done"; outcome: AdmissionOutcome }>;
  /** The outcome of the wallet's admission, or null while it waits (or when there is none). */
  outcome(groupId: string, address: Address): Promise<AdmissionOutcome | null>;
  /** The key a waiter may watch, and how to read its value (see XmtpPort's `watch`). */
  watch(groupId: string, address: Address): { key: string; until: (value: string | null) => boolean };
  /** Groups with admissions waiting. */
  groups(): Promise<string[]>;
  /** Groups with admissions waiting, the one whose first in line has waited longest first. */
  groupsOldestFirst(): Promise<string[]>;
  /** Up to `max` waiting admissions of a group, first in line first (ones older than {@link MAX_ADMISSION_AGE_MS} by Redis's clock are dropped). */
  take(groupId: string, max: number): Promise<PendingAdmission[]>;
  /**
   * Ends admissions with their outcomes (each ends once: a later retry reads it); under `fence`, only while it is
   * the newest (else none).
   * @throws {FencedWriteError} a newer lease holder exists.
   */
  complete(groupId: string, results: readonly { address: Address; outcome: AdmissionOutcome }[], fence?: WriteFence): Promise<void>;
  /**
   * The wallets were removed: forgets how their admissions ended ("added" is no longer the answer), and ends any
   * still waiting as "unavailable" (it must not add them back; the person may ask again). Call it holding the
   * XMTP lease, so no holder is serving them meanwhile.
   */
  forget(groupId: string, addresses: readonly Address[]): Promise<void>;
}

/** An admission queue under `keyPrefix`. */
export function createAdmissionQueue(redis: Redis, keyPrefix: string, now: () => Date = () => new Date()): AdmissionQueue {
  const recordKey = (groupId: string, address: string) => `${keyPrefix}:adm:${groupId}:${address}`;
  const queueKey = (groupId: string) => `${keyPrefix}:adm:q:${groupId}`;
  const groupsKey = `${keyPrefix}:adm:groups`;
  const read = (raw: unknown): AdmissionRecord | null => (typeof raw === "string" ? (parseStored(RecordSchema, raw) ?? null) : null);
  const outcomeOf = (raw: unknown): AdmissionOutcome | null => {
    const rec = read(raw);
    return rec?.state === "done" ? rec.outcome : null;
  };
  return {
    async enqueue(groupId, { address, inboxId, source }) {
      // atMs is set by the script, from Redis's clock.
      const record: AdmissionRecord = { state: "pending", inboxId, source, at: now().toISOString(), atMs: 0 };
      const reply = await storeCall("queue admission", () =>
        redis.eval<string[], string>(
          ENQUEUE,
          [recordKey(groupId, address), queueKey(groupId), groupsKey],
          [JSON.stringify(record), String(PENDING_TTL_MS), address, groupId, String(MAX_ADMISSION_AGE_MS)],
        ),
      );
      const outcome = outcomeOf(reply);
      return outcome ? { state: "done", outcome } : { state: "queued" };
    },
    outcome: async (groupId, address) => outcomeOf(await storeCall("read admission", () => redis.get<string>(recordKey(groupId, address)))),
    watch: (groupId, address) => ({ key: recordKey(groupId, address), until: (value) => outcomeOf(value) !== null }),
    groups: async () => (await storeCall("list admission groups", () => redis.smembers(groupsKey))).map(String),
    groupsOldestFirst: async () =>
      (await storeCall("list admission groups", () => redis.eval<string[], unknown[]>(OLDEST_FIRST, [groupsKey], [`${keyPrefix}:adm:q:`, `${keyPrefix}:adm:`]))).map(String),
    async take(groupId, max) {
      const addresses = (await storeCall("read admission queue", () => redis.lrange<string>(queueKey(groupId), 0, max - 1))).map(String);
      if (addresses.length === 0) return [];
      const records = await storeCall("read admissions", () => redis.mget<(string | null)[]>(...addresses.map((a) => recordKey(groupId, a))));
      const seen = new Set<string>();
      const stale: string[] = [];
      const [seconds, micros] = await storeCall("read redis time", () => redis.time());
      const oldest = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - MAX_ADMISSION_AGE_MS;
      const waiting = addresses.flatMap((address, i) => {
        const rec = read(records[i]);
        const live = rec?.state === "pending" && rec.atMs >= oldest && v.is(StoredAddressSchema, address);
        if (!live) stale.push(address);
        if (rec?.state !== "pending" || !live || seen.has(address)) return [];
        seen.add(address);
        return [{ address, inboxId: rec.inboxId, source: rec.source, at: rec.at }];
      });
      if (stale.length > 0) {
        await storeCall("drop stale admissions", () =>
          redis.eval(DROP, [queueKey(groupId), groupsKey, ...stale.map((a) => recordKey(groupId, a))], [groupId, String(oldest), ...stale]),
        );
      }
      return waiting;
    },
    async complete(groupId, results, fence) {
      const at = now().toISOString();
      if (results.length === 0) return;
      const args = results.flatMap(({ address, outcome }) => [address, JSON.stringify({ state: "done", outcome, at }), String(OUTCOME_TTL_MS)]);
      const written = await storeCall("end admissions", () =>
        redis.eval<string[], number>(
          COMPLETE,
          [queueKey(groupId), groupsKey, fence?.key ?? groupsKey, ...results.map((r) => recordKey(groupId, r.address))],
          [groupId, fence ? String(fence.value) : "", ...args],
        ),
      );
      if (Number(written) !== 1) throw new FencedWriteError("Admission outcomes not written: a newer XMTP lease holder exists");
    },
    async forget(groupId, addresses) {
      if (addresses.length === 0) return;
      const ended = JSON.stringify({ state: "done", outcome: "unavailable", at: now().toISOString() });
      await storeCall("forget admissions", () =>
        redis.eval(FORGET, [queueKey(groupId), groupsKey, ...addresses.map((a) => recordKey(groupId, a))], [groupId, ended, ...addresses]),
      );
    },
  };
}
