import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { CorruptStateError, DependencyUnavailableError } from "../../shared/errors.js";
import type { Manifest, ManifestFile } from "./snapshot-store.js";

/**
 * The files that together are one SQLite/SQLCipher database, as suffixes of its path: the database,
 * its write-ahead log and shared-memory index (WAL mode), and SQLCipher's salt file (libxmtp deletes a
 * salt without its database and starts a new installation, so they only ever travel together).
 */
export const DATABASE_FILE_SUFFIXES = ["", "-wal", "-shm", ".sqlcipher_salt"] as const;
/**
 * The files a saved version holds. The -shm (the WAL's index in shared memory) is left out: it is derived from
 * the -wal, may be mid-update while connections are open, and SQLite rebuilds it when it opens a database without one.
 */
const SAVED_SUFFIXES = ["", "-wal", ".sqlcipher_salt"] as const;

/** One local file of the set, read and chunked. */
export interface LocalFile {
  readonly suffix: string;
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly chunks: readonly { hash: string; bytes: Buffer }[];
}

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** One hash naming a whole set of files (suffix and content of each). */
export function setHash(files: readonly Pick<ManifestFile, "suffix" | "sha256">[]): string {
  return sha256(
    [...files]
      .sort((a, b) => a.suffix.localeCompare(b.suffix))
      .map((f) => `${f.suffix}:${f.sha256}`)
      .join("\n"),
  );
}

/**
 * What this instance last read of the files. `quiet`: by suffix, files that had been left alone when read, with their
 * identity and timestamps (`stamp`); a file whose stamp has not moved since is not read again. `last`: by suffix, the
 * newest read (whose unchanged chunks keep their hashes at the next read) and a spare buffer the next read goes into.
 */
export interface ReadCache {
  readonly quiet: Map<string, { readonly stamp: string; readonly file: LocalFile }>;
  readonly last: Map<string, { readonly file: LocalFile; readonly buffer: Buffer; readonly spare: Buffer | null }>;
}

/** An empty {@link ReadCache}. */
export const createReadCache = (): ReadCache => ({ quiet: new Map(), last: new Map() });

/**
 * How long a file must have been left alone before what was read of it is remembered by its timestamps. File
 * times are coarse (a clock tick): a write in the same tick as the previous one may leave the modification time
 * as it was, but never a write a tick later. Linux file systems with sub-second times tick every few milliseconds
 * (the kernel's coarse clock): 100 ms is far past one. A time with no sub-second part may come from a file system
 * that keeps whole seconds (or two): then two seconds, as "racy git" does.
 */
const quietNs = (mtimeNs: bigint) => (mtimeNs % 1_000_000_000n === 0n ? 2_000_000_000n : 100_000_000n);

const stampOf = (s: BigIntStats) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;

/**
 * Reads a whole file into `reuse` when it is large enough (memory already touched: on a fresh allocation, faulting
 * its pages in costs more than the read itself), else into a new buffer with room to grow. Reads until the end
 * of the file, however much it grew meanwhile.
 */
async function readInto(path: string, reuse: Buffer | null): Promise<{ bytes: Buffer; buffer: Buffer }> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    let buffer = reuse && reuse.length >= size + 4096 ? reuse : Buffer.allocUnsafeSlow(Math.ceil(size * 1.25) + 65536);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        const bigger = Buffer.allocUnsafeSlow(buffer.length * 2);
        buffer.copy(bigger, 0, 0, length);
        buffer = bigger;
      }
      const { bytesRead } = await handle.read(buffer, length, Math.min(8 * 1024 * 1024, buffer.length - length), length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return { bytes: buffer.subarray(0, length), buffer };
  } finally {
    await handle.close();
  }
}

/**
 * One file read and hashed. With a previous read of it, a chunk whose bytes equal that read's chunk at the same place
 * keeps its hash (a comparison costs far less than a hash; equal bytes have the same hash whatever they were), and a
 * file equal in every chunk keeps its SHA-256.
 */
function describeFile(suffix: string, bytes: Buffer, chunkSize: number, previous: LocalFile | undefined): LocalFile {
  const chunks: { hash: string; bytes: Buffer }[] = [];
  let unchanged = previous !== undefined && previous.bytes.length === bytes.length;
  for (let i = 0, offset = 0; offset < bytes.length; i++, offset += chunkSize) {
    const part = bytes.subarray(offset, offset + chunkSize);
    const before = previous?.chunks[i];
    if (before && before.bytes.length === part.length && before.bytes.equals(part)) {
      chunks.push({ hash: before.hash, bytes: part });
    } else {
      unchanged = false;
      chunks.push({ hash: sha256(part), bytes: part });
    }
  }
  return { suffix, bytes, sha256: unchanged && previous ? previous.sha256 : sha256(bytes), chunks };
}

/**
 * Reads whichever of the saved files exist. With `cache`, a file unchanged (by identity, size and timestamps) since
 * it was read while quiet is not read again: during a session the main database changes only when SQLite
 * checkpoints its WAL, so a save costs what the WAL holds, not what the database has grown to. A file that is read
 * goes into this instance's own buffers, and only its changed chunks are hashed.
 *
 * With a cache, what a read returns stays intact until the next-but-one read of the same file (its buffers are reused).
 */
export async function readLocalSet(dbPath: string, chunkSize: number, cache?: ReadCache): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  for (const suffix of SAVED_SUFFIXES) {
    const path = dbPath + suffix;
    let before: BigIntStats;
    let file: LocalFile;
    try {
      before = await stat(path, { bigint: true });
      const known = cache?.quiet.get(suffix);
      if (known && known.stamp === stampOf(before)) {
        files.push(known.file);
        continue;
      }
      if (cache) {
        const last = cache.last.get(suffix);
        const { bytes, buffer } = await readInto(path, last?.spare ?? null);
        file = describeFile(suffix, bytes, chunkSize, last?.file);
        // The newest read keeps its buffer; the one before it is overwritten by the next read.
        cache.last.set(suffix, { file, buffer, spare: last?.buffer ?? null });
      } else {
        file = describeFile(suffix, await readFile(path), chunkSize, undefined);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        cache?.quiet.delete(suffix);
        continue;
      }
      throw error;
    }
    files.push(file);
    if (!cache) continue;
    const after = await stat(path, { bigint: true }).catch(() => undefined);
    const quiet = after !== undefined && stampOf(after) === stampOf(before) && BigInt(Date.now()) * 1_000_000n - before.mtimeNs > quietNs(before.mtimeNs);
    if (quiet && after.size === BigInt(file.bytes.length)) cache.quiet.set(suffix, { stamp: stampOf(before), file });
    else cache.quiet.delete(suffix);
  }
  return files;
}

/** The files kept changing while being read: no consistent copy could be taken (the save is retried; 503). */
export class UnstableFilesError extends DependencyUnavailableError {
  override readonly name = "UnstableFilesError";
  override readonly publicMessage = "The service could not save its state; try again in a moment";
}

const sameSet = (a: readonly LocalFile[], b: readonly LocalFile[]) =>
  a.length === b.length && a.every((f, i) => f.suffix === b[i]!.suffix && f.sha256 === b[i]!.sha256);

/**
 * Reads the set until two reads in a row are identical. A connection closing in the background finishes its
 * checkpoint on its own time, and a read across it can take the old main file without its -wal (a copy that
 * is missing the newest transactions); two identical reads mean nothing changed while the second was taken.
 * @throws {UnstableFilesError} when the files do not hold still within `timeoutMs`.
 */
export async function readStableSet(dbPath: string, chunkSize: number, options: { timeoutMs?: number; pauseMs?: number; cache?: ReadCache } = {}): Promise<LocalFile[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let previous = await readLocalSet(dbPath, chunkSize, options.cache);
  for (;;) {
    await new Promise((r) => setTimeout(r, options.pauseMs ?? 2));
    const current = await readLocalSet(dbPath, chunkSize, options.cache);
    if (sameSet(previous, current)) return current;
    if (Date.now() > deadline) throw new UnstableFilesError("XMTP database files kept changing while being saved");
    previous = current;
  }
}

/**
 * Waits (at most `timeoutMs`) until the database has no -wal and -shm beside it: SQLite checkpoints and removes
 * them when its last connection closes, which may happen a little after the pool was released.
 * Answers whether they are gone.
 */
export async function waitForClosedDatabase(dbPath: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await Promise.all(["-wal", "-shm"].map((suffix) => stat(dbPath + suffix).then(() => true, () => false)));
    if (!open.includes(true)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Deletes every file of the set (and leftovers of an interrupted restore). */
export async function removeLocalSet(dbPath: string): Promise<void> {
  for (const suffix of DATABASE_FILE_SUFFIXES) {
    await rm(dbPath + suffix, { force: true });
    await rm(dbPath + suffix + ".restoring", { force: true });
  }
}

/** Whether the files on disk still have the sizes the manifest says (a cheap check for a warm instance). */
export async function matchesSizes(dbPath: string, manifest: Manifest): Promise<boolean> {
  for (const suffix of DATABASE_FILE_SUFFIXES) {
    const expected = manifest.files.find((f) => f.suffix === suffix);
    const size = await stat(dbPath + suffix).then(
      (s) => s.size,
      () => null,
    );
    if ((expected?.size ?? null) !== size) return false;
  }
  return true;
}

/**
 * Whether the main file and the salt the manifest has are still on disk (sizes aside: a database kept open grows, and
 * its -wal comes and goes as SQLite checkpoints). Something that deleted them (a cleaned-up /tmp) means a restore.
 */
export async function stillPresent(dbPath: string, manifest: Manifest): Promise<boolean> {
  for (const file of manifest.files) {
    if (file.suffix === "-wal") continue;
    if (!(await stat(dbPath + file.suffix).then(() => true, () => false))) return false;
  }
  return true;
}

/**
 * Makes the files on disk exactly the manifest's version. Chunks already present in local files are reused;
 * only the others are fetched. Every file is assembled beside its target, verified against its SHA-256
 * and the set hash, and only then renamed into place, so nothing ever opens a half-written file.
 * @throws {CorruptStateError} when what was fetched does not hash to what the manifest says.
 */
export async function restoreLocalSet(
  dbPath: string,
  manifest: Manifest,
  fetchChunks: (hashes: string[]) => Promise<Map<string, Buffer>>,
): Promise<{ reusedChunks: number; fetchedChunks: number }> {
  if (setHash(manifest.files) !== manifest.sha256) throw new CorruptStateError("XMTP database manifest hash mismatch");
  const local = new Map<string, Buffer>();
  for (const file of await readLocalSet(dbPath, manifest.chunkSize).catch(() => [])) {
    for (const chunk of file.chunks) local.set(chunk.hash, chunk.bytes);
  }
  const needed = [...new Set(manifest.files.flatMap((f) => f.chunks))];
  const missing = needed.filter((h) => !local.has(h));
  const fetched = missing.length > 0 ? await fetchChunks(missing) : new Map<string, Buffer>();
  const staged: string[] = [];
  try {
    for (const file of manifest.files) {
      const bytes = Buffer.concat(
        file.chunks.map((h) => {
          const chunk = local.get(h) ?? fetched.get(h);
          if (!chunk || sha256(chunk) !== h) throw new CorruptStateError(`XMTP database chunk ${h} is missing or corrupt`);
          return chunk;
        }),
      );
      if (bytes.length !== file.size || sha256(bytes) !== file.sha256) {
        throw new CorruptStateError(`XMTP database file ${file.suffix || "(main)"} does not match its SHA-256`);
      }
      await writeFile(dbPath + file.suffix + ".restoring", bytes);
      staged.push(file.suffix);
    }
  } catch (error) {
    for (const suffix of staged) await rm(dbPath + suffix + ".restoring", { force: true });
    throw error;
  }
  for (const suffix of DATABASE_FILE_SUFFIXES) {
    if (!manifest.files.some((f) => f.suffix === suffix)) await rm(dbPath + suffix, { force: true });
  }
  for (const suffix of staged) await rename(dbPath + suffix + ".restoring", dbPath + suffix);
  return { reusedChunks: needed.length - missing.length, fetchedChunks: missing.length };
}
