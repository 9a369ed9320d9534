import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { asLocalStorageError, CorruptStateError, DependencyUnavailableError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import { silentLogger, describeError } from "../../shared/log.js";
import type { Redis, WriteFence } from "../../shared/redis.js";
import { storeCall } from "../../shared/redis.js";
import { createMutex } from "../../shared/mutex.js";
import { acquireLease, LeaseLostError, LeaseNotNeededError, LeaseTimeoutError, type Lease, type LeaseOptions } from "./lease.js";
import { createReadCache, matchesSizes, readStableSet, removeLocalSet, restoreLocalSet, setHash, stillPresent } from "./local-files.js";
import { createSnapshotStore, MissingChunkError, type Manifest, type SnapshotStore } from "./snapshot-store.js";
import { SESSION_BUDGET_MS } from "../port.js";

/** What holds the database open (the XMTP client, or a plain SQLite handle in tests). */
export interface DatabaseHolder {
  /** Closes every connection so the files on disk are complete (WAL checkpointed or carried along). Idempotent. */
  release(): Promise<void>;
  /** The files are about to be replaced or are not to be trusted: forget any open handle entirely. */
  discard(): Promise<void>;
  /**
   * True when the handle stays open between sessions: a session's final save then takes the files as they are
   * (the main file and its WAL, read until two reads agree, as every checkpoint does) instead of closing the handle
   * first. Closing folds the WAL into the main file, so the final save would read the whole database again, and the
   * next session's first write on fresh connections pays for reopening (libxmtp reads its whole database once per
   * new connection). Anything the handle writes between sessions stays local unless a later session saves it: the
   * network sees nothing unsaved, because writes only leave through checkpoints, which refuse outside a session.
   */
  readonly keptOpen?: boolean;
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

/**
 * Nothing is stored for the installation, yet one existed: starting afresh would register a new installation that
 * is in none of the groups. Sessions refuse until an operator acts (503; the message, logged only, says how).
 */
export class StoredStateLostError extends DependencyUnavailableError {
  override readonly name = "StoredStateLostError";
  override readonly publicMessage = "The service needs operator attention; try again later";
}

/** Saving the database failed, or this holder lost its lease: what was not saved is dropped (503). */
export class PersistFailedError extends DependencyUnavailableError {
  override readonly name = "PersistFailedError";
  override readonly publicMessage = "The service could not save its state; try again later";
}

/** The default session budget (see the port): the longest a session takes from the call, its final save included. */
export { SESSION_BUDGET_MS };

/**
 * Kept free at the end of a session for the final save (the database closing, then the upload); as much again
 * before it for an operation already started to finish. A session with less than twice this left does not start.
 */
const SAVE_RESERVE_MS = 5000;

/** What a failed restore is: a missing chunk needs an operator (503 naming the recovery), a failing disk is this instance's (503). */
function restoreFailure(error: unknown): unknown {
  if (error instanceof MissingChunkError) return error;
  return asLocalStorageError(error, "Restoring the XMTP database");
}

/** How long a session's work may start new network work after it took the lease (a shorter session budget caps it). */
const DEFAULT_WORK_BUDGET_MS = 25_000;

/** The session's time ran out (waiting on this instance, or its work overran): nothing more of it runs (503). */
export class SessionDeadlineError extends DependencyUnavailableError {
  override readonly name = "SessionDeadlineError";
  override readonly publicMessage = "The service is busy; try again in a moment";
}

/**
 * How long the lease lives unrenewed (renewed every third of it while held): after a holder dies, the next one
 * takes over within this, for every group. Short, because renewals are cheap and a dead holder stalls everyone.
 */
export const LEASE_TTL_MS = 3500;

/** How long a session whose writes were saved ahead keeps retrying its final save. */
const FINAL_SAVE_BUDGET_SAVED_AHEAD_MS = 3000;

/** Why the lease was lost, as its signal says. */
function lostError(lease: Lease): Error {
  const reason: unknown = lease.signal.reason;
  return reason instanceof Error ? reason : new LeaseLostError("XMTP lease lost");
}

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
  /** When the session must be over, save included (epoch ms); never later than the session budget from the call. */
  readonly deadline?: number;
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
  /** The longest a session takes from the call, everything included (default {@link SESSION_BUDGET_MS}). */
  readonly sessionBudgetMs?: number;
  /** Time kept for the final save at the end of a session (default 5 s; see SAVE_RESERVE_MS). */
  readonly saveReserveMs?: number;
  readonly logger?: Logger;
  /**
   * How many installations the network lists for the backend inbox (asked without a client). Asked only when
   * nothing is stored, so that a store that lost its data never silently starts another installation. Omitted:
   * not asked (a database that is not an XMTP installation's).
   */
  readonly networkInstallations?: () => Promise<number>;
  /** Called at each step (tests inject crashes here). */
  readonly onStep?: (step: SessionStep) => void | Promise<void>;
}

/** The database made durable in Redis, one writer at a time. */
export interface DurableDatabase {
  /**
   * Runs `work` holding the lease, on the newest committed version of the files, then persists what changed
   * before answering. Calls on one instance run one at a time.
   * Every session ends by its deadline ({@link RunOptions.deadline}, at most the session budget from the call):
   * one that waited too long on this instance or for the lease does not start; work still running when only the
   * save's time is left is no longer waited for (its later writes are refused) and its files are dropped.
   * @throws {import("./lease.js").LeaseTimeoutError} another instance held the lease too long (503).
   * @throws {SessionDeadlineError} the session's time ran out before it started or while the work ran (503).
   * @throws {import("./lease.js").LeaseLostError} the lease was lost while the work ran: it is no longer waited for (503).
   * @throws {import("./lease.js").LeaseNotNeededError} while waiting, `options.watch` said the session is not needed.
   * @throws {NeedsRecoveryError} the installation is marked for recovery (503).
   * @throws {StoredStateLostError} nothing is stored, but an installation is recorded or the network lists some (503).
   * @throws {import("./snapshot-store.js").MissingChunkError} the stored version lacks a chunk (503; nothing ran).
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
  /**
   * During a session: when the work must stop starting new network work (epoch ms), so the save still fits the
   * function's time; in the past once the lease is lost.
   */
  readonly workDeadline: number;
  /** During a session: its fencing number, for Redis writes that must not land once a newer holder exists. */
  readonly fence: WriteFence | null;
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
  // What was last read of quiet files (see readLocalSet): a checkpoint re-reads only what changed since.
  const readCache = createReadCache();
  // The checkpoint that writes asking now would share (see `checkpoint`).
  let nextCheckpoint: { started: boolean; done: Promise<void> } | null = null;
  const step = async (name: SessionStep) => options.onStep?.(name);
  // The manifest the local files are known to equal; null when unknown (cold start, failed restore or commit).
  let local: Manifest | null = null;
  let localKnownEmpty = false;
  // The running session: the version it builds on (moved on by each checkpoint), its fencing number, and
  // what is unsettled (saved with each version).
  let active: { base: Manifest | null; lease: Lease; deadline: number; stopAt: number; workDeadline: number; unsettled: Set<string> } | null = null;
  const budgetMs = options.sessionBudgetMs ?? SESSION_BUDGET_MS;
  const reserveMs = options.saveReserveMs ?? SAVE_RESERVE_MS;

  /**
   * Nothing is stored: true only before the first session ever, which the installation record and the network
   * can contradict (the record shares the manifest's prefix, so a flushed Redis loses both: the network is asked too).
   */
  const expectNothingCommitted = async () => {
    const recorded = await store.readInstallation().catch((error: unknown) => {
      if (error instanceof CorruptStateError) return { installationId: "(unreadable record)" };
      throw error;
    });
    if (recorded) {
      throw new StoredStateLostError(
        `The stored XMTP database is gone (no manifest) but installation ${recorded.installationId} is recorded: Redis lost data. ` +
          "A new installation would be in none of the groups. Recover with `npm run xmtp:recover -- --force` (see README \"Recovering the XMTP installation\").",
      );
    }
    const listed = (await options.networkInstallations?.()) ?? 0;
    if (listed > 0 && !(await store.newInstallationAllowed())) {
      throw new StoredStateLostError(
        `Nothing is stored for the XMTP installation, but the network lists ${listed} installation(s) of the backend inbox: ` +
          "either Redis was flushed (the installation's state is lost: its groups need it re-added or recreated), or this wallet " +
          "is already used by another XMTP app. No new installation is registered by accident: to start one, allow it once with " +
          "`npm run xmtp:recover -- --allow-new-installation` (see README \"Recovering the XMTP installation\").",
      );
    }
  };

  const sync = async (holder: DatabaseHolder, manifest: Manifest | null) => {
    if (manifest === null) {
      await expectNothingCommitted();
      // Nothing committed yet: the first session starts from no files at all (a leftover salt would make
      // libxmtp start a new installation anyway).
      if (!localKnownEmpty) {
        await holder.discard();
        await removeLocalSet(options.dbPath);
        localKnownEmpty = true;
      }
      return;
    }
    if (local && local.version === manifest.version && local.sha256 === manifest.sha256) {
      // A handle kept open may have written since the last save (libxmtp finishing up, its workers): those files are
      // this version and more, which the next checkpoint saves. Anything else must still be what was saved.
      if (holder.keptOpen ? await stillPresent(options.dbPath, manifest) : await matchesSizes(options.dbPath, manifest)) return;
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
    const files = await readStableSet(options.dbPath, chunkSize, { cache: readCache });
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
    const manifest: Manifest = { ...next, version: (base?.version ?? 0) + 1, fence: session.lease.fence, committedAt: new Date().toISOString() };
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
          if (base === null) {
            // The operator's permission was for this first version: it does not carry over to a later loss.
            await store.clearNewInstallationAllowed().catch((error: unknown) => logger.warn("xmtp_permission_not_cleared", { error: describeError(error) }));
          }
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
      return active?.lease.held ? active.workDeadline : 0;
    },
    get fence() {
      return active ? { key: store.keys.fence, value: active.lease.fence } : null;
    },
    unsettle: (item) => void active?.unsettled.add(item),
    settle: (item) => void active?.unsettled.delete(item),
    checkpoint: () => {
      // Group commit: writes that ask while no save has started yet share the next one (their state is on disk by
      // then); one that asks after a save started reading waits for the save after it.
      if (nextCheckpoint && !nextCheckpoint.started) return nextCheckpoint.done;
      const round: { started: boolean; done: Promise<void> } = { started: false, done: Promise.resolve() };
      round.done = saving(async () => {
        round.started = true;
        const session = active;
        if (!session) throw new PersistFailedError("No XMTP session is running: nothing may be written to the network now");
        if (session.lease.signal.aborted) throw lostError(session.lease);
        if (Date.now() >= session.stopAt) throw new SessionDeadlineError("The XMTP session's time is up: no more writes in it");
        // The client waits on this write and retries a refused one itself: one attempt, no retries here.
        await save(session, Date.now());
        await step("checkpointed");
      });
      nextCheckpoint = round;
      return round.done;
    },
    run: (holder, work, runOptions = {}) => {
      // The wait on this instance counts: the session's time starts with the call.
      const called = Date.now();
      const deadline = Math.min(runOptions.deadline ?? Infinity, called + budgetMs);
      return exclusive(async () => {
        // Less than the save's time plus as much for the work: not worth taking the lease.
        const leaseWaitMs = Math.min(options.leaseWaitMs ?? 15_000, deadline - 2 * reserveMs - Date.now());
        if (leaseWaitMs <= 0) throw new SessionDeadlineError(`The XMTP session's time ran out waiting on this instance (${Date.now() - called} ms)`);
        // Calls on one instance wait their turn here: by then another session may have done this one's work.
        const { watch } = runOptions;
        if (watch && watch.until(await storeCall("read watched key", () => options.redis.get<string>(watch.key)))) {
          throw new LeaseNotNeededError("No longer needed: done while waiting on this instance");
        }
        const lease = await acquireLease(options.redis, {
          leaseKey: store.keys.lease,
          fenceKey: store.keys.fence,
          ttlMs: options.leaseTtlMs ?? LEASE_TTL_MS,
          waitMs: leaseWaitMs,
          ...(runOptions.watch ? { watch: runOptions.watch } : {}),
        }).catch((error: unknown) => {
          throw error instanceof LeaseTimeoutError && leaseWaitMs < (options.leaseWaitMs ?? 15_000)
            ? new SessionDeadlineError(`The XMTP session's time ran out waiting for the lease (${Date.now() - called} ms)`, { cause: error })
            : error;
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
          const stopAt = deadline - reserveMs;
          const session = {
            base,
            lease,
            deadline: Math.min(deadline, options.persistBudgetMs === undefined ? Infinity : called + options.persistBudgetMs),
            stopAt,
            workDeadline: Math.min(leasedAt + (options.workBudgetMs ?? DEFAULT_WORK_BUDGET_MS), stopAt - reserveMs),
            unsettled: new Set(base?.unsettled ?? []),
          };
          active = session;
          // Whatever the work did to the files is saved even when it failed: a failed operation may still have
          // changed the installation's state (a commit recorded as published, say). Work that overruns the
          // session, or outlives its lease, is not waited for: see below.
          let outcome: { ok: true; value: Awaited<ReturnType<typeof work>> } | { ok: false; error: unknown; abandoned?: boolean };
          let timer: NodeJS.Timeout | undefined;
          let onLost: (() => void) | undefined;
          try {
            const working = work();
            working.catch(() => undefined);
            const stopped = new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new SessionDeadlineError("The XMTP session's work overran its time")), Math.max(0, stopAt - Date.now()));
              onLost = () => reject(lostError(lease));
              if (lease.signal.aborted) onLost();
              else lease.signal.addEventListener("abort", onLost, { once: true });
            });
            outcome = { ok: true, value: await Promise.race([working, stopped]) };
          } catch (error) {
            outcome = { ok: false, error, abandoned: error instanceof SessionDeadlineError || lease.signal.aborted };
          } finally {
            clearTimeout(timer);
            if (onLost) lease.signal.removeEventListener("abort", onLost);
          }
          if (!outcome.ok && outcome.abandoned) {
            // The work may still be running: nothing it does from now on is saved (its checkpoints are refused, so
            // none of its writes leaves), and these files may not be whole. Everything that left was saved first.
            active = null;
            await distrust(holder);
            logger.warn("xmtp_session_stopped", { error: describeError(outcome.error) });
            throw outcome.error;
          }
          await step("worked");
          try {
            if (!holder.keptOpen) await holder.release();
            // Saved ahead, the final save only spares the next session some re-reading: not worth making
            // the person wait long for it.
            const saveBy = runOptions.savedAhead ? Math.min(session.deadline, Date.now() + FINAL_SAVE_BUDGET_SAVED_AHEAD_MS) : session.deadline;
            await saving(() => save(session, saveBy));
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
      });
    },
  };
}
