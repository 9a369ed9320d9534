import * as v from "valibot";
import { CorruptStateError } from "../../shared/errors.js";
import { parseStored, storeCall, type Redis } from "../../shared/redis.js";

/** One file of the database set as stored: its size, whole-file SHA-256 and chunk hashes in order. */
export interface ManifestFile {
  /** Appended to the database path: ".db3", ".db3-wal", ".db3-shm", ".db3.sqlcipher_salt". */
  readonly suffix: string;
  readonly size: number;
  readonly sha256: string;
  readonly chunks: readonly string[];
}

/** A committed version of the database set. Files absent from it were absent when it was taken. */
export interface Manifest {
  readonly version: number;
  /** Fencing number of the lease under which this version was committed. */
  readonly fence: number;
  readonly chunkSize: number;
  readonly files: readonly ManifestFile[];
  /** SHA-256 over the files' suffixes and hashes: one value naming the whole set. */
  readonly sha256: string;
  readonly committedAt: string;
  /**
   * What the holder was in the middle of when it saved this version (checkpoints only: for XMTP, the groups
   * whose writes were on their way). A final save clears them; a session starting from a version that has
   * some settles them first.
   */
  readonly unsettled?: readonly string[];
}

const ManifestSchema = v.object({
  version: v.pipe(v.number(), v.integer(), v.minValue(1)),
  fence: v.pipe(v.number(), v.integer(), v.minValue(1)),
  chunkSize: v.pipe(v.number(), v.integer(), v.minValue(1)),
  files: v.array(
    v.object({
      suffix: v.string(),
      size: v.pipe(v.number(), v.integer(), v.minValue(0)),
      sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
      chunks: v.array(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))),
    }),
  ),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  committedAt: v.string(),
  unsettled: v.optional(v.array(v.string())),
});

const RecoveryMarkerSchema = v.object({ at: v.string(), reason: v.string(), installationId: v.nullable(v.string()), version: v.number() });
const InstallationSchema = v.object({ installationId: v.string(), inboxId: v.string(), address: v.string(), recordedAt: v.string() });

/** Why the installation must not be used until an operator recovers it. */
export interface RecoveryMarker {
  readonly at: string;
  readonly reason: string;
  readonly installationId: string | null;
  readonly version: number;
}

/** The outcome of a commit attempt. */
export type CommitResult =
  | { readonly kind: "committed" }
  /** A newer lease exists: this holder must never write again. */
  | { readonly kind: "fenced" }
  /** The installation is marked as needing recovery: nothing is committed until an operator recovers it. */
  | { readonly kind: "blocked" }
  /** The stored version is not the one this holder started from. */
  | { readonly kind: "conflict"; readonly currentVersion: number }
  /** Chunks expired between upload and commit; upload them again. */
  | { readonly kind: "missing"; readonly hashes: readonly string[] };

/** Largest Redis request body we send: Upstash refuses requests over 10 MB. */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024;
/** Uploaded chunks live this long until a commit makes them permanent, so abandoned uploads clean themselves up. */
const PENDING_CHUNK_TTL_MS = 60 * 60 * 1000;

// Atomic commit: fence first (a stale holder changes nothing), no recovery marker, then the base version, then every chunk
// of the new version must exist; then those chunks become permanent, unreferenced ones are deleted,
// and the manifest is replaced.
const COMMIT = `
local fence = redis.call('GET', KEYS[2])
if fence ~= ARGV[1] then return {'fenced'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'blocked'} end
local cur = redis.call('GET', KEYS[1])
local curVersion = 0
if cur then curVersion = cjson.decode(cur).version end
if tostring(curVersion) ~= ARGV[2] then return {'conflict', tostring(curVersion)} end
local nNew = tonumber(ARGV[4])
local missing = {'missing'}
for i = 4, 3 + nNew do
  if redis.call('EXISTS', KEYS[i]) == 0 then table.insert(missing, KEYS[i]) end
end
if #missing > 1 then return missing end
for i = 4, 3 + nNew do redis.call('PERSIST', KEYS[i]) end
for i = 4 + nNew, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SET', KEYS[1], ARGV[3])
return {'ok'}
`;

/** A chunk the manifest names is not in Redis (evicted, deleted): the saved version cannot be restored without it. */
export class MissingChunkError extends CorruptStateError {
  override readonly name = "MissingChunkError";
  constructor(readonly hash: string) {
    super(`XMTP database chunk ${hash} is missing`);
  }
}

/** Byte counts of what went over the wire, for tests and benchmarks. */
export interface TransferStats {
  bytesDownloaded: number;
  bytesUploaded: number;
  chunksDownloaded: number;
  chunksUploaded: number;
}

/**
 * The database's versions in Redis: content-addressed chunks (base64 text under their SHA-256),
 * one manifest, the fencing counter, and the needs-recovery marker. Every method may throw
 * {@link import("../../shared/errors.js").StoreUnavailableError}.
 */
export function createSnapshotStore(redis: Redis, keyPrefix: string, options: { maxRequestBytes?: number } = {}) {
  const maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;
  const base = `${keyPrefix}:xmtpdb`;
  const keys = {
    manifest: `${base}:manifest`,
    fence: `${base}:fence`,
    lease: `${base}:lease`,
    recovery: `${base}:needs-recovery`,
    installation: `${base}:installation`,
    history: `${base}:recoveries`,
    chunk: (hash: string) => `${base}:chunk:${hash}`,
  };
  const stats: TransferStats = { bytesDownloaded: 0, bytesUploaded: 0, chunksDownloaded: 0, chunksUploaded: 0 };

  return {
    keys,
    stats,

    /** The current manifest, or null before the first commit. @throws {CorruptStateError} on a malformed one. */
    async readManifest(): Promise<Manifest | null> {
      const raw = await storeCall("read manifest", () => redis.get<string>(keys.manifest));
      if (raw === null || raw === undefined) return null;
      const parsed = parseStored(ManifestSchema, String(raw));
      if (!parsed) throw new CorruptStateError("XMTP database manifest is not JSON of the shape this code writes");
      const { unsettled, ...manifest } = parsed;
      return unsettled?.length ? { ...manifest, unsettled } : manifest;
    },

    /** Fetches chunks by hash, in batches that keep each response under the request limit. @throws {MissingChunkError} */
    async downloadChunks(hashes: readonly string[], chunkSize: number): Promise<Map<string, Buffer>> {
      const out = new Map<string, Buffer>();
      const perBatch = Math.max(1, Math.floor(maxRequestBytes / Math.ceil((chunkSize * 4) / 3)));
      for (let i = 0; i < hashes.length; i += perBatch) {
        const batch = hashes.slice(i, i + perBatch);
        const values = await storeCall("download chunks", () => redis.mget<(string | null)[]>(...batch.map(keys.chunk)));
        batch.forEach((hash, j) => {
          const value = values[j];
          if (typeof value !== "string") throw new MissingChunkError(hash);
          const bytes = Buffer.from(value, "base64");
          stats.bytesDownloaded += bytes.length;
          stats.chunksDownloaded++;
          out.set(hash, bytes);
        });
      }
      return out;
    },

    /** Uploads chunks that Redis does not hold yet (SET NX), as pending (expiring) until a commit keeps them. */
    async uploadChunks(chunks: ReadonlyMap<string, Buffer>, onBatch?: () => void | Promise<void>): Promise<void> {
      let pipe = redis.pipeline();
      let size = 0;
      let count = 0;
      const flush = async () => {
        if (count === 0) return;
        const p = pipe;
        await storeCall("upload chunks", () => p.exec());
        await onBatch?.();
        pipe = redis.pipeline();
        size = 0;
        count = 0;
      };
      for (const [hash, bytes] of chunks) {
        const text = bytes.toString("base64");
        if (size + text.length > maxRequestBytes) await flush();
        pipe.set(keys.chunk(hash), text, { nx: true, px: PENDING_CHUNK_TTL_MS });
        size += text.length + 100;
        count++;
        stats.bytesUploaded += bytes.length;
        stats.chunksUploaded++;
      }
      await flush();
    },

    /**
     * Commits `manifest` as the next version after `baseVersion` (0 for none) under `fence`, deleting chunks
     * only `previous` referenced. One atomic step: see {@link CommitResult}.
     */
    async commit(manifest: Manifest, baseVersion: number, previous: Manifest | null): Promise<CommitResult> {
      const wanted = new Set(manifest.files.flatMap((f) => f.chunks));
      const orphaned = [...new Set(previous?.files.flatMap((f) => f.chunks) ?? [])].filter((h) => !wanted.has(h));
      const reply = await storeCall("commit manifest", () =>
        redis.eval<string[], unknown>(
          COMMIT,
          [keys.manifest, keys.fence, keys.recovery, ...[...wanted].map(keys.chunk), ...orphaned.map(keys.chunk)],
          [String(manifest.fence), String(baseVersion), JSON.stringify(manifest), String(wanted.size)],
        ),
      );
      const [kind, ...rest] = v.is(v.array(v.string()), reply) ? reply : [];
      if (kind === "ok") return { kind: "committed" };
      if (kind === "fenced") return { kind: "fenced" };
      if (kind === "blocked") return { kind: "blocked" };
      if (kind === "conflict") return { kind: "conflict", currentVersion: Number(rest[0]) };
      if (kind === "missing") return { kind: "missing", hashes: rest.map((k) => k.slice(k.lastIndexOf(":") + 1)) };
      throw new CorruptStateError("Unexpected reply from the commit script");
    },

    /** The needs-recovery marker, if set. */
    async readRecoveryMarker(): Promise<RecoveryMarker | null> {
      const raw = await storeCall("read recovery marker", () => redis.get<string>(keys.recovery));
      if (raw === null || raw === undefined) return null;
      // A marker that does not parse still stops XMTP work: it is there, and only an operator may clear it.
      return parseStored(RecoveryMarkerSchema, String(raw)) ?? { at: "", reason: "unreadable marker", installationId: null, version: 0 };
    },

    /**
     * Sets the needs-recovery marker (kept if one is already there: the first reason is the useful one). Sessions
     * no longer set it (releases before write-ahead saving did); an operator may, to stop all XMTP work.
     */
    async markNeedsRecovery(marker: RecoveryMarker): Promise<void> {
      await storeCall("mark needs recovery", () => redis.set(keys.recovery, JSON.stringify(marker), { nx: true }));
    },

    /** Records the installation this deployment runs as (for operators). */
    async recordInstallation(record: { installationId: string; inboxId: string; address: string }): Promise<void> {
      await storeCall("record installation", () =>
        redis.set(keys.installation, JSON.stringify({ ...record, recordedAt: new Date().toISOString() })),
      );
    },

    /**
     * The recorded installation, or null before the first session.
     * @throws {CorruptStateError} a record is there but does not parse (it names the installation a recovery revokes).
     */
    async readInstallation(): Promise<v.InferOutput<typeof InstallationSchema> | null> {
      const raw = await storeCall("read installation", () => redis.get<string>(keys.installation));
      if (raw === null || raw === undefined) return null;
      const record = parseStored(InstallationSchema, raw);
      if (!record) throw new CorruptStateError("The recorded XMTP installation has an unexpected shape");
      return record;
    },
  };
}

/** The snapshot store's interface. */
export type SnapshotStore = ReturnType<typeof createSnapshotStore>;
