import * as v from "valibot";
import type { Redis } from "../redis.js";
import { storeCall } from "../redis.js";

/** Entries kept per group; older ones fall off. */
export const AUDIT_LOG_CAP = 1000;

/** One decision about a wallet and a group. */
export interface AuditEntry {
  readonly at: string;
  /** Which door the request came through. */
  readonly source: "webhook" | "operator" | "join-page" | "reverify";
  readonly action: "join" | "add" | "remove";
  readonly address: string;
  readonly outcome: "added" | "already-member" | "denied" | "error" | "removed" | "not-a-member" | "not-on-xmtp";
  readonly reason?: string;
}

const AuditEntrySchema = v.object({
  at: v.string(),
  source: v.picklist(["webhook", "operator", "join-page", "reverify"]),
  action: v.picklist(["join", "add", "remove"]),
  address: v.string(),
  outcome: v.picklist(["added", "already-member", "denied", "error", "removed", "not-a-member", "not-on-xmtp"]),
  reason: v.optional(v.string()),
});

/** A capped, newest-first log of decisions per group. */
export interface AuditLog {
  /** Appends an entry (stamped now). @throws {import("../errors.js").StoreUnavailableError} */
  append(groupId: string, entry: Omit<AuditEntry, "at">): Promise<void>;
  /** Entries newest first; malformed entries are skipped. @throws {import("../errors.js").StoreUnavailableError} */
  list(groupId: string, options: { offset: number; limit: number }): Promise<{ entries: AuditEntry[]; total: number }>;
}

/** An audit log in Redis lists under `keyPrefix`. */
export function createAuditLog(redis: Redis, keyPrefix: string, now: () => Date = () => new Date()): AuditLog {
  const key = (groupId: string) => `${keyPrefix}:audit:${groupId}`;
  return {
    async append(groupId, entry) {
      const line = JSON.stringify({ at: now().toISOString(), ...entry });
      const tx = redis.multi();
      tx.lpush(key(groupId), line);
      tx.ltrim(key(groupId), 0, AUDIT_LOG_CAP - 1);
      await storeCall("append audit", () => tx.exec());
    },
    async list(groupId, { offset, limit }) {
      const [lines, total] = await storeCall("list audit", () =>
        Promise.all([redis.lrange<string>(key(groupId), offset, offset + limit - 1), redis.llen(key(groupId))]),
      );
      const entries: AuditEntry[] = [];
      for (const line of lines) {
        try {
          const parsed = v.safeParse(AuditEntrySchema, typeof line === "string" ? JSON.parse(line) : line);
          if (parsed.success) {
            const { reason, ...rest } = parsed.output;
            entries.push(reason === undefined ? rest : { ...rest, reason });
          }
        } catch {
          // A line that is not JSON is skipped rather than failing the whole page.
        }
      }
      return { entries, total };
    },
  };
}
