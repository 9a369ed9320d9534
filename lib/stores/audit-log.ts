import * as v from "valibot";
import { FencedWriteError } from "../shared/errors.js";
import { parseStored, storeCall, type Redis, type WriteFence } from "../shared/redis.js";
import { StoredAddressSchema, type Address } from "../shared/address.js";

/** Entries kept per group; older ones fall off. */
export const AUDIT_LOG_CAP = 1000;

/**
 * One decision about a wallet and a group, or one change the operator made to the group itself ("edit": name,
 * description or rules; "join-link": rotate, disable, enable; "message": sent as the backend), which names no wallet.
 */
export interface AuditEntry {
  readonly at: string;
  /** Which door the request came through. */
  readonly source: "webhook" | "operator" | "join-page" | "reverify";
  /** `warn`: re-verification told a member who no longer qualifies when they will be removed (or called it off). */
  readonly action: "join" | "add" | "remove" | "edit" | "join-link" | "message" | "warn";
  /** The wallet decided about; none for the operator's changes to the group itself. */
  readonly address?: Address;
  readonly outcome: "added" | "already-member" | "denied" | "error" | "removed" | "not-a-member" | "not-on-xmtp" | "changed" | "sent" | "warned" | "warning-cancelled";
  readonly reason?: string;
  /** Who acted, for the operator's actions: a signed-in admin's address, or "api-key" (a script or the CLI). */
  readonly actor?: string;
}

const AuditEntrySchema = v.object({
  at: v.string(),
  source: v.picklist(["webhook", "operator", "join-page", "reverify"]),
  action: v.picklist(["join", "add", "remove", "edit", "join-link", "message", "warn"]),
  address: v.optional(StoredAddressSchema),
  outcome: v.picklist(["added", "already-member", "denied", "error", "removed", "not-a-member", "not-on-xmtp", "changed", "sent", "warned", "warning-cancelled"]),
  reason: v.optional(v.string()),
  actor: v.optional(v.string()),
});

/**
 * Which entries a listing shows: "changes" (who got in or out, already-member answers, and errors), "denials"
 * (wallets turned away), or both, merged newest first.
 */
export type AuditKind = "changes" | "denials" | "all";

/** Outcomes kept apart from the rest: a flood of wallets the rules turn away cannot push real history out. */
const DENIALS: ReadonlySet<AuditEntry["outcome"]> = new Set(["denied", "not-on-xmtp"]);

// Appends entries (ARGV[3…]: pairs of list index into KEYS, entry) and trims both lists (KEYS[1], KEYS[2]) to the
// cap (ARGV[2]), in one step with the fence check when there is one (KEYS[3], ARGV[1]: the fencing number; "" for none).
const APPEND = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('LPUSH', KEYS[tonumber(ARGV[i])], ARGV[i + 1]) end
for i = 1, 2 do redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[2]) - 1) end
return 1
`;

/** Capped, newest-first logs of decisions per group: one for changes, one for denials (each keeps its last {@link AUDIT_LOG_CAP}). */
export interface AuditLog {
  /** Appends an entry (stamped now) to its log. @throws {import("../shared/errors.js").StoreUnavailableError} */
  append(groupId: string, entry: Omit<AuditEntry, "at">): Promise<void>;
  /**
   * Appends several entries, in order, in one round trip; under `fence`, only while it is the newest (else none).
   * @throws {import("../shared/errors.js").StoreUnavailableError}
   * @throws {FencedWriteError} a newer lease holder exists.
   */
  appendMany(groupId: string, entries: readonly Omit<AuditEntry, "at">[], fence?: WriteFence): Promise<void>;
  /** Entries newest first; malformed entries are skipped. @throws {import("../shared/errors.js").StoreUnavailableError} */
  list(groupId: string, options: { offset: number; limit: number; kind?: AuditKind }): Promise<{ entries: AuditEntry[]; total: number }>;
  /** Wallets let in (joined or added) and turned away since `since`, counted from the kept entries. @throws {import("../shared/errors.js").StoreUnavailableError} */
  countSince(groupId: string, since: Date): Promise<{ joins: number; denials: number }>;
}

/** An audit log in Redis lists under `keyPrefix`. */
export function createAuditLog(redis: Redis, keyPrefix: string, now: () => Date = () => new Date()): AuditLog {
  const key = (groupId: string, kind: Exclude<AuditKind, "all">) => `${keyPrefix}:audit:${kind === "denials" ? "denials:" : ""}${groupId}`;
  const read = async (groupId: string, kind: Exclude<AuditKind, "all">, from: number, count: number) => {
    const [lines, total] = await storeCall("list audit", () =>
      Promise.all([redis.lrange<string>(key(groupId, kind), from, from + count - 1), redis.llen(key(groupId, kind))]),
    );
    return { entries: lines.flatMap(parseLine), total };
  };
  // Reads a newest-first list a page at a time until an entry is older than `since` (at most the cap).
  const countIn = async (groupId: string, kind: Exclude<AuditKind, "all">, since: string, counts: (e: AuditEntry) => boolean) => {
    let n = 0;
    for (let from = 0; from < AUDIT_LOG_CAP; from += 100) {
      const lines = await storeCall("count audit", () => redis.lrange<string>(key(groupId, kind), from, from + 99));
      const entries = lines.flatMap(parseLine);
      for (const e of entries) {
        if (e.at < since) return n;
        if (counts(e)) n++;
      }
      if (lines.length < 100) return n;
    }
    return n;
  };
  const log: AuditLog = {
    async countSince(groupId, since) {
      const at = since.toISOString();
      const [joins, denials] = await Promise.all([
        countIn(groupId, "changes", at, (e) => e.outcome === "added"),
        countIn(groupId, "denials", at, () => true),
      ]);
      return { joins, denials };
    },
    append: (groupId, entry) => log.appendMany(groupId, [entry]),
    async appendMany(groupId, entries, fence) {
      if (entries.length === 0) return;
      const at = now().toISOString();
      const lists = [key(groupId, "changes"), key(groupId, "denials")];
      const written = await storeCall("append audit", () =>
        redis.eval<string[], number>(
          APPEND,
          [...lists, fence?.key ?? lists[0]!],
          [fence ? String(fence.value) : "", String(AUDIT_LOG_CAP), ...entries.flatMap((entry) => [DENIALS.has(entry.outcome) ? "2" : "1", JSON.stringify({ at, ...entry })])],
        ),
      );
      if (Number(written) !== 1) throw new FencedWriteError("Audit entries not written: a newer XMTP lease holder exists");
    },
    async list(groupId, { offset, limit, kind = "all" }) {
      if (kind !== "all") return read(groupId, kind, offset, limit);
      // Both logs are newest first: the first offset+limit of each hold the merged page.
      const [changes, denials] = await Promise.all([read(groupId, "changes", 0, offset + limit), read(groupId, "denials", 0, offset + limit)]);
      const merged = [...changes.entries, ...denials.entries].sort((a, b) => b.at.localeCompare(a.at));
      return { entries: merged.slice(offset, offset + limit), total: changes.total + denials.total };
    },
  };
  return log;
}

// A line that does not parse is skipped rather than failing the whole page.
function parseLine(line: unknown): AuditEntry[] {
  const parsed = parseStored(AuditEntrySchema, line);
  if (!parsed) return [];
  const { reason, actor, address, ...rest } = parsed;
  return [{ ...rest, ...(address === undefined ? {} : { address }), ...(reason === undefined ? {} : { reason }), ...(actor === undefined ? {} : { actor }) }];
}
