import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { asLocalStorageError, DependencyUnavailableError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import { silentLogger, describeError } from "../../shared/log.js";
import type { Redis } from "../../shared/redis.js";
import { storeCall } from "../../shared/redis.js";
import { createMutex } from "../../shared/mutex.js";
import { acquireLease, LeaseNotNeededError, type LeaseOptions } from "./lease.js";
import { matchesSizes, readStableSet, removeLocalSet, restoreLocalSet, setHash } from "./local-files.js";
import { createSnapshotStore, MissingChunkError, type Manifest, type SnapshotStore } from "./snapshot-store.js";

/** What holds the database open (the XMTP client, or a plain SQLite handle in tests). */
export interface DatabaseHolder {
  /** Closes every connection so the files on disk are complete (WAL checkpointed or carried along). Idempotent. */
  release(): Promise<void>;
  /** The files are about to be replaced or are not to be trusted: forget any open handle entirely. */
  discard(): Promise<void>;
}

/** The points of a session, in order (checkpoints happen during the work); tests kill processes at each. */
export type SessionStep = "leased" | "restored" | "checkpointed" | "worked" | "uploading" | "upload-batch" | "uploaded" | "committed";

/** The installation is marked as needing recovery; sessions refuse to run until an operator recovers it (503). */
export class NeedsRecoveryError extends DependencyUnavailableError {
  override readonly name = "NeedsRecoveryError";
  override readonly publicMessage = "The service needs operator attention; try again later";
  constructor(reason: string, options?: ErrorOptions) {
    super(`XMTP installation needs recovery: ${reason}`, options);
  }
}

/** Saving the database failed, or this holder lost its lease: what was not saved is dropped (503). */
export class PersistFailedError extends DependencyUnavailableError {
  override readonly name = "PersistFailedError";
  override readonly publicMessage = "The service could not save its state; try again later";
}

/** What a failed restore is: a missing chunk needs an operator (503 naming the recovery), a failing disk is this instance's (503). */
function restoreFailure(error: unknown): unknown {
  if (error instanceof MissingChunkError) return new NeedsRecoveryError(`${error.message}; run \`npm run xmtp:recover\``, { cause: error });
  return asLocalStorageError(error, "Restoring the XMTP database");
}

/** How long a session's work may start new network work after it took the lease (15 s of lease wait + 25 s + the save fit in 60 s). */
const DEFAULT_WORK_BUDGET_MS = 25_000;

/** How long a session whose writes were saved ahead keeps retrying its final save. */
const FINAL_SAVE_BUDGET_SAVED_AHEAD_MS = 3000;

/** How a session treats a final save that fails. */
export interface RunOptions {
  /**
   * True when everything the work made visible outside this instance was saved before it left (every
   * network write went through {@link DurableDatabase.checkpoint}). A failed final save then loses only what
   * the next session re-reads from the network, so the work's result is still answered. False (the default):
   * the work's effects exist only in these files, and a failed final save fails the session.
   */
  readonly savedAhead?: boolean;
  /** While waiting for the lease: stop waiting once this key says the session is no longer needed (see acquireLease). */
  readonly watch?: LeaseOptions["watch"];
}

/** Options of {@link createDurableDatabase}. */
export interface DurableDatabaseOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  /** The database's main file; its -wal, -shm and .sqlcipher_salt siblings travel with it. */
  readonly dbPath: string;
  /** Snapshot chunk size (default 64 KiB: sixteen 4 KiB SQLite pages). */
  readonly chunkSize?: number;
  readonly leaseTtlMs?: number;
  /** Largest Redis request the snapshot store sends (default 8 MB, under Upstash's 10 MB). */
  readonly maxRequestBytes?: number;
  readonly leaseWaitMs?: number;
  /** How long a session may keep retrying to persist after its work succeeded (stay under maxDuration). */
  readonly persistBudgetMs?: number;
  /** How long after taking the lease the work may start new network work (see {@link DurableDatabase.workDeadline}). */
  readonly workBudgetMs?: number;
  readonly logger?: Logger;
  /** Called at each step (tests inject crashes here). */
  readonly onStep?: (step: SessionStep) => void | Promise<void>;
}

/** The database made durable in Redis, one writer at a time. */
export interface DurableDatabase {
  /**
   * Runs `work` holding the lease, on the newest committed version of the files, then persists what changed
   * before answering. Calls on one instance run one at a time.
   * @throws {import("./lease.js").LeaseTimeoutError} another instance held the lease too long (503).
   * @throws {import("./lease.js").LeaseNotNeededError} while waiting, `options.watch` said the session is not needed.
   * @throws {NeedsRecoveryError} the installation is marked for recovery, or a chunk of its saved version is missing (503).
   * @throws {import("../../shared/errors.js").LocalStorageError} this instance's disk failed the restore (503).
   * @throws {PersistFailedError} the work succeeded but its result could not be saved, and it was not `savedAhead` (503).
   * @throws {import("../../shared/errors.js").CorruptStateError} the stored version does not verify (500; nothing ran).
   */
  run<T>(holder: DatabaseHolder, work: () => Promise<T>, options?: RunOptions): Promise<T>;
  /**
   * Saves the files as they are now, while the work is still running (its connections open), as the session's
   * next version: called before a network write leaves, so the saved state is never behind the network.
   * The version also names what is {@link unsettle}d, for the next session to settle if this one does not finish.
   * @throws when no session is running, this holder has lost its lease, or Redis cannot take the save.
   */
  checkpoint(): Promise<void>;
  /** During a session: when the work must stop starting new network work (epoch ms), so the save still fits the function's time. */
  readonly workDeadline: number;
  /**
   * During a session: what is unsettled now, starting with what the version it restored left unsettled (a
   * session before it that stopped midway). Saved with every version until {@link settle}d.
   */
  readonly unsettled: readonly string[];
  /** Marks `item` unsettled (work on it is starting) or settled (done, or found in order) for this session's saves. */
  unsettle(item: string): void;
  settle(item: string): void;
  /** The committed version this instance's files are at, or null when it has none it trusts. */
  readonly localVersion: number | null;
  readonly store: SnapshotStore;
}

/** Makes the database at `dbPath` durable state in Redis (see {@link DurableDatabase}). */
export function createDurableDatabase(options: DurableDatabaseOptions): DurableDatabase {
  const store = createSnapshotStore(options.redis, options.keyPrefix, options.maxRequestBytes ? { maxRequestBytes: options.maxRequestBytes } : {});
  const chunkSize = options.chunkSize ?? 64 * 1024;
  const logger = options.logger ?? silentLogger;
  const exclusive = createMutex();
  // Checkpoints and the final save of a session, one at a time (a background write may checkpoint as the work ends).
  const saving = createMutex();
  const step = async (name: SessionStep) => options.onStep?.(name);
  // The manifest the local files are known to equal; null when unknown (cold start, failed restore or commit).
  let local: Manifest | null = null;
  let localKnownEmpty = false;
  // The running session: the version it builds on (moved on by each checkpoint), its fencing number, and
  // what is unsettled (saved with each version).
  let active: { base: Manifest | null; fence: number; deadline: number; workDeadline: number; unsettled: Set<string> } | null = null;

  const sync = async (holder: DatabaseHolder, manifest: Manifest | null) => {
    if (manifest === null) {
      // Nothing committed yet: the first session starts from no files at all (a leftover salt would make
      // libxmtp start a new installation anyway).
      if (!localKnownEmpty) {
        await holder.discard();
        await removeLocalSet(options.dbPath);
        localKnownEmpty = true;
      }
      return;
    }
    if (local && local.version === manifest.version && local.sha256 === manifest.sha256 && (await matchesSizes(options.dbPath, manifest))) {
      return;
    }
    await holder.discard();
    local = null;
    localKnownEmpty = false;
    await mkdir(dirname(options.dbPath), { recursive: true });
    await restoreLocalSet(options.dbPath, manifest, (hashes) => store.downloadChunks(hashes, manifest.chunkSize));
    local = manifest;
  };

  /** Commits the files on disk as the session's next version (nothing when unchanged). @throws {PersistFailedError} refused; transport errors after the deadline. */
  const save = async (session: NonNullable<typeof active>, deadline: number): Promise<void> => {
    const unsettled = [...session.unsettled].sort();
    const files = await readStableSet(options.dbPath, chunkSize);
    const base = session.base;
    const next: Omit<Manifest, "version" | "fence" | "committedAt"> = {
      chunkSize,
      files: files.map((f) => ({ suffix: f.suffix, size: f.bytes.length, sha256: f.sha256, chunks: f.chunks.map((c) => c.hash) })),
      sha256: setHash(files),
      ...(unsettled.length > 0 ? { unsettled } : {}),
    };
    const sameNotes = (base?.unsettled ?? []).join() === (next.unsettled ?? []).join();
    if (base ? base.sha256 === next.sha256 && base.chunkSize === chunkSize && sameNotes : files.length === 0) {
      return; // Nothing changed: no new version.
    }
    const manifest: Manifest = { ...next, version: (base?.version ?? 0) + 1, fence: session.fence, committedAt: new Date().toISOString() };
    const known = new Set(base?.files.flatMap((f) => f.chunks) ?? []);
    let toUpload = new Map<string, Buffer>();
    for (const file of files) for (const c of file.chunks) if (!known.has(c.hash)) toUpload.set(c.hash, c.bytes);
    const allChunks = new Map(files.flatMap((f) => f.chunks.map((c) => [c.hash, c.bytes] as const)));

    let attempt = 0;
    for (;;) {
      try {
        await step("uploading");
        await store.uploadChunks(toUpload, () => step("upload-batch"));
        await step("uploaded");
        const result = await store.commit(manifest, base?.version ?? 0, base);
        if (result.kind === "committed") {
          session.base = manifest;
          local = manifest;
          localKnownEmpty = false;
          await step("committed");
          return;
        }
        if (result.kind === "missing") {
          toUpload = new Map(result.hashes.map((h) => [h, allChunks.get(h)!] as const));
          continue;
        }
        throw new PersistFailedError(`XMTP database commit refused: ${result.kind}`);
      } catch (error) {
        if (error instanceof PersistFailedError || Date.now() + 200 * 2 ** attempt > deadline) throw error;
        logger.warn("xmtp_persist_retry", { attempt, error: describeError(error) });
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt++));
      }
    }
  };

  /** These files hold what the store never got: the next session must restore the newest saved version. */
  const distrust = async (holder: DatabaseHolder) => {
    local = null;
    localKnownEmpty = false;
    await holder.discard();
    await removeLocalSet(options.dbPath).catch(() => undefined);
  };

  return {
    store,
    get localVersion() {
      return local?.version ?? null;
    },
    get unsettled() {
      return [...(active?.unsettled ?? [])];
    },
    get workDeadline() {
      return active?.workDeadline ?? 0;
    },
    unsettle: (item) => void active?.unsettled.add(item),
    settle: (item) => void active?.unsettled.delete(item),
    checkpoint: () =>
      saving(async () => {
        const session = active;
        if (!session) throw new PersistFailedError("No XMTP session is running: nothing may be written to the network now");
        // The client waits on this write and retries a refused one itself: one attempt, no retries here.
        await save(session, Date.now());
        await step("checkpointed");
      }),
    run: (holder, work, runOptions = {}) =>
      exclusive(async () => {
        const started = Date.now();
        // Calls on one instance wait their turn here: by then another session may have done this one's work.
        const { watch } = runOptions;
        if (watch && watch.until(await storeCall("read watched key", () => options.redis.get<string>(watch.key)))) {
          throw new LeaseNotNeededError("No longer needed: done while waiting on this instance");
        }
        const lease = await acquireLease(options.redis, {
          leaseKey: store.keys.lease,
          fenceKey: store.keys.fence,
          ttlMs: options.leaseTtlMs ?? 30_000,
          waitMs: options.leaseWaitMs ?? 15_000,
          ...(runOptions.watch ? { watch: runOptions.watch } : {}),
        });
        try {
          await step("leased");
          // Only an operator sets this marker now (or an older release of this code did): respect it.
          const marker = await store.readRecoveryMarker();
          if (marker) throw new NeedsRecoveryError(marker.reason);
          const base = await store.readManifest();
          await sync(holder, base).catch((error: unknown) => {
            throw restoreFailure(error);
          });
          await step("restored");
          const leasedAt = Date.now();
          const session = {
            base,
            fence: lease.fence,
            deadline: started + (options.persistBudgetMs ?? 40_000),
            workDeadline: leasedAt + (options.workBudgetMs ?? DEFAULT_WORK_BUDGET_MS),
            unsettled: new Set(base?.unsettled ?? []),
          };
          active = session;
          // Whatever the work did to the files is saved even when it failed: a failed operation may still have
          // changed the installation's state (a commit recorded as published, say).
          let outcome: { ok: true; value: Awaited<ReturnType<typeof work>> } | { ok: false; error: unknown };
          try {
            outcome = { ok: true, value: await work() };
          } catch (error) {
            outcome = { ok: false, error };
          }
          await step("worked");
          try {
            await holder.release();
            // Saved ahead, the final save only spares the next session some re-reading: not worth making
            // the person wait long for it.
            const deadline = runOptions.savedAhead ? Math.min(session.deadline, Date.now() + FINAL_SAVE_BUDGET_SAVED_AHEAD_MS) : session.deadline;
            await saving(() => save(session, deadline));
          } catch (error) {
            await distrust(holder);
            logger.error("xmtp_persist_failed", { savedAhead: runOptions.savedAhead === true, error: describeError(error) });
            if (!runOptions.savedAhead && outcome.ok) {
              throw error instanceof PersistFailedError ? error : new PersistFailedError("XMTP database persist failed", { cause: error });
            }
          } finally {
            active = null;
          }
          if (!outcome.ok) throw outcome.error;
          return outcome.value;
        } finally {
          active = null;
          await lease.release();
        }
      }),
  };
}
