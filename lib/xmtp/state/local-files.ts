import { createHash } from "node:crypto";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { CorruptStateError } from "../../errors.js";
import type { Manifest, ManifestFile } from "./snapshot-store.js";

/**
 * The files that together are one SQLite/SQLCipher database, as suffixes of its path: the database,
 * its write-ahead log and shared-memory index (WAL mode), and SQLCipher's salt file (libxmtp deletes a
 * salt without its database and starts a new installation, so they only ever travel together).
 */
export const DATABASE_FILE_SUFFIXES = ["", "-wal", "-shm", ".sqlcipher_salt"] as const;

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

/** Reads whichever files of the set exist. */
export async function readLocalSet(dbPath: string, chunkSize: number): Promise<LocalFile[]> {
  const files: LocalFile[] = [];
  for (const suffix of DATABASE_FILE_SUFFIXES) {
    let bytes: Buffer;
    try {
      bytes = await readFile(dbPath + suffix);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    files.push({ suffix, bytes, sha256: sha256(bytes), chunks: chunkBytes(bytes, chunkSize) });
  }
  return files;
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
