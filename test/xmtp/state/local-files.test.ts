import { appendFile, mkdtemp, utimes, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readLocalSet, readStableSet, type ReadCache } from "../../../lib/xmtp/state/local-files.js";

// A save re-reads only files that changed since they were last read while quiet (real files, real timestamps).
const dbFiles = async () => {
  const dbPath = join(await mkdtemp(join(tmpdir(), "lf-")), "x.db3");
  await writeFile(dbPath, randomBytes(256 * 1024));
  await writeFile(`${dbPath}-wal`, randomBytes(8 * 1024));
  return dbPath;
};
const age = (path: string, seconds: number) => utimes(path, new Date(Date.now() - seconds * 1000), new Date(Date.now() - seconds * 1000));

describe("reading the database's files with a cache", () => {
  it("does not read a quiet, unchanged main file again, but reads the WAL every time", async () => {
    const dbPath = await dbFiles();
    await age(dbPath, 10);
    const cache: ReadCache = new Map();
    const first = await readLocalSet(dbPath, 64 * 1024, cache);
    await appendFile(`${dbPath}-wal`, randomBytes(4096));
    const second = await readLocalSet(dbPath, 64 * 1024, cache);
    expect(second[0]).toBe(first[0]);
    expect(second[1]).not.toBe(first[1]);
    expect(second[1]!.bytes.length).toBe(12 * 1024);
  });

  it("reads the main file again once it changes (a WAL checkpoint), and never remembers one written just now", async () => {
    const dbPath = await dbFiles();
    const cache: ReadCache = new Map();
    // Written just now: within a clock tick another write could keep the same timestamp, so it is not remembered.
    const fresh = await readLocalSet(dbPath, 64 * 1024, cache);
    expect((await readLocalSet(dbPath, 64 * 1024, cache))[0]).not.toBe(fresh[0]);
    await age(dbPath, 10);
    const quiet = await readLocalSet(dbPath, 64 * 1024, cache);
    await appendFile(dbPath, randomBytes(4096));
    const changed = await readLocalSet(dbPath, 64 * 1024, cache);
    expect(changed[0]).not.toBe(quiet[0]);
    expect(changed[0]!.bytes.length).toBe(260 * 1024);
    expect(changed[0]!.sha256).not.toBe(quiet[0]!.sha256);
  });

  it("gives the same stable read with the cache as without, and remembers the quiet main file", async () => {
    const dbPath = await dbFiles();
    await age(dbPath, 10);
    const cache: ReadCache = new Map();
    const cached = await readStableSet(dbPath, 64 * 1024, { cache });
    const plain = await readStableSet(dbPath, 64 * 1024);
    expect(cached.map((f) => [f.suffix, f.sha256])).toEqual(plain.map((f) => [f.suffix, f.sha256]));
    expect(cache.has("")).toBe(true);
  });
});
