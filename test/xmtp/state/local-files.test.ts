import { appendFile, mkdtemp, utimes, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createReadCache, readLocalSet, readStableSet } from "../../../lib/xmtp/state/local-files.js";
import { open as openFile } from "node:fs/promises";

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
    const cache = createReadCache();
    const first = await readLocalSet(dbPath, 64 * 1024, cache);
    await appendFile(`${dbPath}-wal`, randomBytes(4096));
    const second = await readLocalSet(dbPath, 64 * 1024, cache);
    expect(second[0]).toBe(first[0]);
    expect(second[1]).not.toBe(first[1]);
    expect(second[1]!.bytes.length).toBe(12 * 1024);
  });

  it("reads the main file again once it changes (a WAL checkpoint), and never remembers one written just now", async () => {
    const dbPath = await dbFiles();
    const cache = createReadCache();
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

  it("counts a file as quiet a tenth of a second after its last write, or two seconds when its time has no sub-second part", async () => {
    const dbPath = await dbFiles();
    const cache = createReadCache();
    const at = (ms: number) => utimes(dbPath, new Date(ms), new Date(ms));
    // 300 ms ago, with milliseconds: past any Linux file system's tick.
    const recent = Date.now() - 300;
    await at(recent % 1000 === 0 ? recent - 1 : recent);
    const quiet = await readLocalSet(dbPath, 64 * 1024, cache);
    expect((await readLocalSet(dbPath, 64 * 1024, cache))[0]).toBe(quiet[0]);
    // A whole second, 0.5 to 1.5 s ago: a file system keeping whole seconds could hide a write in it.
    const wholeSecond = Math.ceil((Date.now() - 1500) / 1000) * 1000;
    await at(wholeSecond);
    const coarse = await readLocalSet(dbPath, 64 * 1024, cache);
    expect((await readLocalSet(dbPath, 64 * 1024, cache))[0]).not.toBe(coarse[0]);
  });

  it("gives the same stable read with the cache as without, and remembers the quiet main file", async () => {
    const dbPath = await dbFiles();
    await age(dbPath, 10);
    const cache = createReadCache();
    const cached = await readStableSet(dbPath, 64 * 1024, { cache });
    const plain = await readStableSet(dbPath, 64 * 1024);
    expect(cached.map((f) => [f.suffix, f.sha256])).toEqual(plain.map((f) => [f.suffix, f.sha256]));
    expect(cache.quiet.has("")).toBe(true);
  });

  it("hashes only what changed, reusing its own buffers, and reads exactly what a plain read gives", async () => {
    const dbPath = await dbFiles();
    const cache = createReadCache();
    const plain = async () => (await readLocalSet(dbPath, 64 * 1024)).map((f) => [f.suffix, f.sha256, f.chunks.map((c) => c.hash)]);
    const asRead = (files: Awaited<ReturnType<typeof readLocalSet>>) => files.map((f) => [f.suffix, f.sha256, f.chunks.map((c) => c.hash)]);
    const first = await readLocalSet(dbPath, 64 * 1024, cache);
    const firstCopy = first.map((f) => Buffer.from(f.bytes));
    expect(asRead(first)).toEqual(await plain());
    // One page in the third chunk changes: a SQLite checkpoint writes pages in place.
    const handle = await openFile(dbPath, "r+");
    await handle.write(randomBytes(4096), 0, 4096, 2 * 64 * 1024 + 8192);
    await handle.close();
    const second = await readLocalSet(dbPath, 64 * 1024, cache);
    expect(asRead(second)).toEqual(await plain());
    expect(second[0]!.chunks.map((c, i) => c.hash === first[0]!.chunks[i]!.hash)).toEqual([true, true, false, true]);
    // The read before the newest stays intact (its buffer is reused only by the read after next).
    expect(first.map((f) => Buffer.compare(f.bytes, firstCopy[first.indexOf(f)]!))).toEqual([0, 0]);
    // Growing past the buffer's room, and shrinking, read exactly what is there.
    await appendFile(dbPath, randomBytes(1024 * 1024));
    expect(asRead(await readLocalSet(dbPath, 64 * 1024, cache))).toEqual(await plain());
    await writeFile(dbPath, randomBytes(100 * 1024));
    expect(asRead(await readLocalSet(dbPath, 64 * 1024, cache))).toEqual(await plain());
    expect(asRead(await readLocalSet(dbPath, 64 * 1024, cache))).toEqual(await plain());
  });
});
