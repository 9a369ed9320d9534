import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { DependencyUnavailableError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { silentLogger, describeError } from "../../log.js";
import type { Redis } from "../../redis.js";
import { createMutex } from "../mutex.js";
import { acquireLease } from "./lease.js";
import { matchesSizes, readStableSet, removeLocalSet, restoreLocalSet, setHash } from "./local-files.js";
import { createSnapshotStore, type Manifest, type SnapshotStore } from "./snapshot-store.js";

/** What holds the database open (the XMTP client, or a plain SQLite handle in tests). */
export interface DatabaseHolder {
  /** Closes every connection so the files on disk are complete (WAL checkpointed or carried along). Idempotent. */
  release(): Promise<void>;
  /** The files are about to be replaced or are not to be trusted: forget any open handle entirely. */
  discard(): Promise<void>;
}

/** The points of a session, in order; tests kill processes at each. */
export type SessionStep = "leased" | "restored" | "worked" | "uploading" | "upload-batch" | "uploaded" | "committed";

/** The installation is marked as needing recovery; sessions refuse to run until an operator recovers it (503). */
export class NeedsRecoveryError extends DependencyUnavailableError {
  override readonly name = "NeedsRecoveryError";
  constructor(reason: string, options?: ErrorOptions) {
    super(`XMTP installation needs recovery: ${reason}`, "The service needs operator attention; try again later", options);
  }
}

/** Persisting the database after an operation failed, or this holder lost its lease (503; never a success). */
export class PersistFailedError extends DependencyUnavailableError {
  override readonly name = "PersistFailedError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, "The service could not save its state; try again later", options);
  }
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
  /** Labels a needs-recovery marker with the installation it concerns. */
  readonly installationId?: () => string | null;
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
   * @throws {NeedsRecoveryError} the installation is marked for recovery (503).
   * @throws {PersistFailedError} the work succeeded but its result could not be saved (503; marker set).
   * @throws {import("../../errors.js").CorruptStateError} the stored version does not verify (500; nothing ran).
   */
  run<T>(holder: DatabaseHolder, work: () => Promise<T>): Promise<T>;
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
  const step = async (name: SessionStep) => options.onStep?.(name);
  // The manifest the local files are known to equal; null when unknown (cold start, failed restore or commit).
  let local: Manifest | null = null;
  let localKnownEmpty = false;

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

  const persist = async (base: Manifest | null, fence: number, deadline: number): Promise<void> => {
    const files = await readStableSet(options.dbPath, chunkSize);
    const next: Omit<Manifest, "version" | "fence" | "committedAt"> = {
      chunkSize,
      files: files.map((f) => ({ suffix: f.suffix, size: f.bytes.length, sha256: f.sha256, chunks: f.chunks.map((c) => c.hash) })),
      sha256: setHash(files),
    };
    if (base ? base.sha256 === next.sha256 && base.chunkSize === chunkSize : files.length === 0) {
      return; // Nothing changed: no new version.
    }
    const manifest: Manifest = { ...next, version: (base?.version ?? 0) + 1, fence, committedAt: new Date().toISOString() };
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

  return {
    store,
    get localVersion() {
      return local?.version ?? null;
    },
    run: (holder, work) =>
      exclusive(async () => {
        const started = Date.now();
        const lease = await acquireLease(options.redis, {
          leaseKey: store.keys.lease,
          fenceKey: store.keys.fence,
          ttlMs: options.leaseTtlMs ?? 30_000,
          waitMs: options.leaseWaitMs ?? 15_000,
        });
        try {
          await step("leased");
          const marker = await store.readRecoveryMarker();
          if (marker) throw new NeedsRecoveryError(marker.reason);
          const base = await store.readManifest();
          await sync(holder, base);
          await step("restored");
          // Whatever the work did to the files is persisted even when it failed: a failed operation may
          // still have reached the network (a commit sent, then an error), and its state must not be dropped.
          let outcome: { ok: true; value: Awaited<ReturnType<typeof work>> } | { ok: false; error: unknown };
          try {
            outcome = { ok: true, value: await work() };
          } catch (error) {
            outcome = { ok: false, error };
          }
          await step("worked");
          await holder.release();
          try {
            await persist(base, lease.fence, started + (options.persistBudgetMs ?? 40_000));
          } catch (error) {
            // These files hold work the store never got: they must not be used again, and the network may
            // now be ahead of every stored version, so the installation waits for an operator.
            local = null;
            localKnownEmpty = false;
            await holder.discard();
            await removeLocalSet(options.dbPath).catch(() => undefined);
            const reason = error instanceof PersistFailedError ? error.message : "persist failed after the operation succeeded";
            await store
              .markNeedsRecovery({ at: new Date().toISOString(), reason, installationId: options.installationId?.() ?? null, version: base?.version ?? 0 })
              .catch((markError: unknown) => logger.error("xmtp_mark_recovery_failed", { error: describeError(markError) }));
            logger.error("xmtp_persist_failed", { error: describeError(error) });
            throw error instanceof PersistFailedError ? error : new PersistFailedError("XMTP database persist failed", { cause: error });
          }
          if (!outcome.ok) throw outcome.error;
          return outcome.value;
        } finally {
          await lease.release();
        }
      }),
  };
}
