import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
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

/** Splits bytes into fixed-size chunks named by their SHA-256. */
export function chunkBytes(bytes: Buffer, chunkSize: number): { hash: string; bytes: Buffer }[] {
  const out: { hash: string; bytes: Buffer }[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    const part = bytes.subarray(offset, offset + chunkSize);
    out.push({ hash: sha256(part), bytes: part });
  }
  return out;
}

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
 * What this instance last read of files that were quiet at the time: by suffix, the file's identity and
 * timestamps (`stamp`) and what was read. A file whose stamp has not moved since is not read again.
 */
export type ReadCache = Map<string, { readonly stamp: string; readonly file: LocalFile }>;

/**
 * How long a file must have been left alone before what was read of it is remembered by its timestamps. File
 * times are coarse (a clock tick): a write in the same tick as the previous one may leave the modification time
 * as it was, but never a write a whole second later ("racy git" has the same rule).
 */
const QUIET_MS = 1000n;

const stampOf = (s: BigIntStats) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;

/**
 * Reads whichever of the saved files exist. With `cache`, a file unchanged (by identity, size and timestamps) since
 * it was read while quiet is not read again: during a session the main database changes only when SQLite
 * checkpoints its WAL, so a save costs what the WAL holds, not what the database has grown to.
 */
export async function readLocalSet(dbPath: string, chunkSize: number, cache?: ReadCache): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  for (const suffix of SAVED_SUFFIXES) {
    const path = dbPath + suffix;
    let before: BigIntStats;
    let bytes: Buffer;
    try {
      before = await stat(path, { bigint: true });
      const known = cache?.get(suffix);
      if (known && known.stamp === stampOf(before)) {
        files.push(known.file);
        continue;
      }
      bytes = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        cache?.delete(suffix);
        continue;
      }
      throw error;
    }
    const file: LocalFile = { suffix, bytes, sha256: sha256(bytes), chunks: chunkBytes(bytes, chunkSize) };
    files.push(file);
    if (!cache) continue;
    const after = await stat(path, { bigint: true }).catch(() => undefined);
    const quiet = after !== undefined && stampOf(after) === stampOf(before) && BigInt(Date.now()) * 1_000_000n - before.mtimeNs > QUIET_MS * 1_000_000n;
    if (quiet && after.size === BigInt(bytes.length)) cache.set(suffix, { stamp: stampOf(before), file });
    else cache.delete(suffix);
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
