import * as v from "valibot";
import { parseStored, storeCall, type Redis } from "../shared/redis.js";

/**
 * Where the next re-verification run starts: the group's position in the registry's list (0 = from the newest
 * group again) and, mid-group, the last member address checked (members are taken in address order, so removals
 * in between cannot shift it).
 */
export interface ReverifyCursor {
  readonly group: number;
  readonly after: string | null;
}

/** The cron's bookmark, one Redis key. Methods may throw StoreUnavailableError. */
export interface ReverifyCursorStore {
  /** The saved cursor, or the start when none is saved (or what is saved does not parse). */
  read(): Promise<ReverifyCursor>;
  save(cursor: ReverifyCursor): Promise<void>;
  /** Remembers what the last run did (shown on the dashboard's status page). */
  saveLastRun(run: ReverifyRunSummary): Promise<void>;
  /** What the last run did, or null when none is recorded. */
  lastRun(): Promise<ReverifyRunSummary | null>;
}

/** What a re-verification run did, in counts. */
export interface ReverifyRunSummary {
  readonly at: string;
  readonly groupsChecked: number;
  readonly membersChecked: number;
  readonly removed: number;
  readonly reconciled: number;
  readonly skipped: number;
  readonly failedGroups: number;
  readonly stoppedBy: string;
}

const RunSchema = v.object({
  at: v.string(),
  groupsChecked: v.number(),
  membersChecked: v.number(),
  removed: v.number(),
  reconciled: v.number(),
  skipped: v.number(),
  failedGroups: v.number(),
  stoppedBy: v.string(),
});

const CursorSchema = v.object({
  group: v.pipe(v.number(), v.integer(), v.minValue(0)),
  after: v.nullable(v.pipe(v.string(), v.regex(/^0x[0-9a-f]{40}$/))),
});
const START: ReverifyCursor = { group: 0, after: null };

/** The cursor under `keyPrefix`. */
export function createReverifyCursorStore(redis: Redis, keyPrefix: string): ReverifyCursorStore {
  const key = `${keyPrefix}:reverify:cursor`;
  return {
    async read() {
      const raw = await storeCall("read cursor", () => redis.get<string>(key));
      // Older runs stored the group position alone.
      if (typeof raw === "string" && /^\d{1,9}$/.test(raw)) return { group: Number(raw), after: null };
      return parseStored(CursorSchema, raw) ?? START;
    },
    async save(cursor) {
      await storeCall("write cursor", () => redis.set(key, JSON.stringify(cursor)));
    },
    async saveLastRun(run) {
      await storeCall("write last run", () => redis.set(`${keyPrefix}:reverify:last-run`, JSON.stringify(run)));
    },
    async lastRun() {
      const raw = await storeCall("read last run", () => redis.get<string>(`${keyPrefix}:reverify:last-run`));
      return parseStored(RunSchema, raw) ?? null;
    },
  };
}
