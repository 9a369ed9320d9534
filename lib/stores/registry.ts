import { createHash } from "node:crypto";
import * as v from "valibot";
import { CorruptStateError } from "../shared/errors.js";
import { parseStored, storeCall, type Redis } from "../shared/redis.js";
import { RulesSchema, type Rules } from "../shared/rules.js";

/** Where a group stands: recorded but not yet registered with the link service, or joinable. */
export type GroupState = "pending-link" | "active";

/** A group this backend created, as stored in Redis. */
export interface GroupRecord {
  readonly groupId: string;
  readonly name: string;
  readonly description: string;
  readonly imageUrl?: string;
  readonly rules: Rules;
  readonly state: GroupState;
  /** The link service's id for this group's link, once registered; null without a link service. */
  readonly linkId: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

const GroupRecordSchema = v.object({
  groupId: v.string(),
  name: v.string(),
  description: v.string(),
  imageUrl: v.optional(v.string()),
  rules: RulesSchema,
  state: v.picklist(["pending-link", "active"]),
  linkId: v.nullable(v.string()),
  createdAt: v.string(),
  updatedAt: v.string(),
});

/** What an `Idempotency-Key` has been used for so far. */
export type IdempotencyClaim =
  | { readonly kind: "new" }
  | { readonly kind: "in-progress" }
  | { readonly kind: "mismatch" }
  | { readonly kind: "created"; readonly groupId: string };

/** How long a claimed key blocks a concurrent retry before a new attempt may start. */
const CLAIM_TTL_MS = 60_000;
/** How long a finished key answers retries with the same group. */
const RESULT_TTL_S = 7 * 24 * 3600;

// What an Idempotency-Key holds: the request's fingerprint, and the group once one was recorded under it.
const ClaimSchema = v.object({ fp: v.string(), groupId: v.optional(v.string()) });

// CLAIM_SCRIPT's answer: what the first caller did with the key.
const ClaimReplySchema = v.union([
  v.tuple([v.literal("created"), v.string()]),
  v.tuple([v.picklist(["new", "in-progress", "mismatch"])]),
]);

// Claims a key atomically: the first caller gets "new"; later callers see what the first did.
const CLAIM_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], cjson.encode({fp = ARGV[1]}), 'PX', ARGV[2])
  return {'new'}
end
local rec = cjson.decode(cur)
if rec.fp ~= ARGV[1] then return {'mismatch'} end
if rec.groupId then return {'created', rec.groupId} end
return {'in-progress'}
`;

/** The groups this backend manages, their links and the idempotency keys of their creation. */
export interface GroupRegistry {
  /** The group, or null when this backend did not create it. @throws {CorruptStateError} on a record of the wrong shape. */
  get(groupId: string): Promise<GroupRecord | null>;
  /** Records a new group as `pending-link` (and, with a key, binds the key to it) in one transaction. */
  insertPending(
    record: Omit<GroupRecord, "state" | "linkId" | "createdAt" | "updatedAt">,
    idempotency?: { key: string; fingerprint: string },
  ): Promise<GroupRecord>;
  /** Stores the group's link-service id (null without a link service) and marks it active. */
  activate(groupId: string, linkId: string | null): Promise<GroupRecord>;
  /** Claims an idempotency key for a request whose body hashes to `fingerprint`. */
  claimIdempotencyKey(key: string, fingerprint: string): Promise<IdempotencyClaim>;
  /** Frees a claimed key whose attempt failed before any group existed, so a retry can start at once. */
  releaseIdempotencyKey(key: string, fingerprint: string): Promise<void>;
  /** Changes name, description or rules of a group. @throws {CorruptStateError} when it vanished. */
  update(groupId: string, changes: { name?: string; description?: string; rules?: Rules }): Promise<GroupRecord>;
  /** Group ids, newest first. */
  list(options: { offset: number; limit: number }): Promise<{ groupIds: string[]; total: number }>;
}

/**
 * A registry over Upstash Redis under `keyPrefix`. Every method may throw
 * {@link import("../shared/errors.js").StoreUnavailableError} when Redis cannot be reached.
 */
export function createGroupRegistry(redis: Redis, keyPrefix: string, now: () => Date = () => new Date()): GroupRegistry {
  const groupKey = (id: string) => `${keyPrefix}:group:${id}`;
  const indexKey = `${keyPrefix}:groups`;
  // Keys are hashed: a caller's key may be long or contain anything.
  const idemKey = (key: string) => `${keyPrefix}:idem:create:${createHash("sha256").update(key).digest("hex")}`;

  const get = async (groupId: string): Promise<GroupRecord | null> => {
    const raw = await storeCall("get group", () => redis.get<string>(groupKey(groupId)));
    if (raw === null || raw === undefined) return null;
    return parseRecord(raw, groupId);
  };

  return {
    get,
    async insertPending(input, idempotency) {
      const at = now().toISOString();
      const record: GroupRecord = { ...input, state: "pending-link", linkId: null, createdAt: at, updatedAt: at };
      const tx = redis.multi();
      tx.set(groupKey(record.groupId), JSON.stringify(record));
      tx.zadd(indexKey, { score: Date.parse(at), member: record.groupId });
      if (idempotency) {
        tx.set(idemKey(idempotency.key), JSON.stringify({ fp: idempotency.fingerprint, groupId: record.groupId }), {
          ex: RESULT_TTL_S,
        });
      }
      await storeCall("insert group", () => tx.exec());
      return record;
    },
    async activate(groupId, linkId) {
      const current = await get(groupId);
      if (!current) throw new CorruptStateError(`Group ${groupId} vanished before activation`);
      const record: GroupRecord = { ...current, state: "active", linkId, updatedAt: now().toISOString() };
      await storeCall("activate group", () => redis.set(groupKey(groupId), JSON.stringify(record)));
      return record;
    },
    async update(groupId, changes) {
      const current = await get(groupId);
      if (!current) throw new CorruptStateError(`Group ${groupId} vanished before update`);
      const record: GroupRecord = { ...current, ...changes, updatedAt: now().toISOString() };
      await storeCall("update group", () => redis.set(groupKey(groupId), JSON.stringify(record)));
      return record;
    },
    async claimIdempotencyKey(key, fingerprint) {
      const reply = await storeCall("claim idempotency key", () =>
        redis.eval<string[], unknown>(CLAIM_SCRIPT, [idemKey(key)], [fingerprint, String(CLAIM_TTL_MS)]),
      );
      const parsed = v.safeParse(ClaimReplySchema, reply);
      if (!parsed.success) throw new CorruptStateError("Unexpected idempotency reply");
      const [kind, groupId] = parsed.output;
      return kind === "created" ? { kind, groupId } : { kind };
    },
    async releaseIdempotencyKey(key, fingerprint) {
      const raw = await storeCall("read idempotency key", () => redis.get<string>(idemKey(key)));
      if (typeof raw !== "string") return;
      const rec = parseStored(ClaimSchema, raw);
      if (rec?.fp === fingerprint && !rec.groupId) await storeCall("release idempotency key", () => redis.del(idemKey(key)));
    },
    async list({ offset, limit }) {
      const [ids, total] = await storeCall("list groups", () =>
        Promise.all([
          redis.zrange<string[]>(indexKey, offset, offset + limit - 1, { rev: true }),
          redis.zcard(indexKey),
        ]),
      );
      return { groupIds: ids.map(String), total };
    },
  };
}

function parseRecord(raw: unknown, groupId: string): GroupRecord {
  const parsed = parseStored(GroupRecordSchema, raw);
  if (!parsed) throw new CorruptStateError(`Group ${groupId} record is not JSON of the shape this code writes`);
  const { imageUrl, ...rest } = parsed;
  return imageUrl === undefined ? rest : { ...rest, imageUrl };
}
