import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject, describe, expect, it, vi } from "vitest";
import { CorruptStateError, DependencyUnavailableError } from "../../../lib/shared/errors.js";
import { createRedis } from "../../../lib/shared/redis.js";
import { createDurableDatabase, PersistFailedError, type DurableDatabaseOptions } from "../../../lib/xmtp/state/durable-database.js";
import { createSqliteHolder } from "../../support/sqlite-holder.js";

const upstash = inject("upstash");
const redis = createRedis(upstash, { plainResponses: true });
const newPrefix = () => `ddb${Math.random().toString(36).slice(2)}`;
const instance = async (prefix: string, extra: Partial<DurableDatabaseOptions> = {}) => {
  const dbPath = join(await mkdtemp(join(tmpdir(), "ddb-")), "xmtp.db3");
  const durable = createDurableDatabase({ redis, keyPrefix: prefix, dbPath, chunkSize: 4096, leaseTtlMs: 2000, leaseWaitMs: 5000, ...extra });
  return { durable, holder: createSqliteHolder(dbPath), dbPath };
};

describe("durable database", () => {
  it("creates the database on the first session and commits version 1; later sessions build on it", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await a.durable.run(a.holder, async () => a.holder.increment());
    expect((await a.durable.store.readManifest())?.version).toBe(1);
    const b = await instance(prefix);
    const seen = await b.durable.run(b.holder, async () => b.holder.increment());
    expect(seen).toEqual({ before: 1, after: 2 });
    expect((await b.durable.store.readManifest())?.version).toBe(2);
  });

  it("a warm instance with the current version downloads zero bytes; a stale one only the chunks it lacks", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    const b = await instance(prefix);
    await a.durable.run(a.holder, async () => a.holder.increment(200_000));
    const before = a.durable.store.stats.bytesDownloaded;
    await a.durable.run(a.holder, async () => a.holder.increment());
    expect(a.durable.store.stats.bytesDownloaded - before).toBe(0);

    await b.durable.run(b.holder, async () => b.holder.increment()); // cold: downloads everything
    const cold = b.durable.store.stats.bytesDownloaded;
    expect(cold).toBeGreaterThan(200_000);
    await a.durable.run(a.holder, async () => a.holder.increment()); // b is now one version behind
    await b.durable.run(b.holder, async () => b.holder.increment());
    const stale = b.durable.store.stats.bytesDownloaded - cold;
    expect(stale).toBeGreaterThan(0);
    expect(stale).toBeLessThan(cold / 10);
    expect(b.holder.read()).toBe(5);
  });

  it("uploads only changed chunks, and never sends a Redis request over the limit", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix, { maxRequestBytes: 64 * 1024 });
    const sizes: number[] = [];
    const realFetch = globalThis.fetch;
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      if (typeof init?.body === "string") sizes.push(Buffer.byteLength(init.body));
      return realFetch(input, init);
    });
    await a.durable.run(a.holder, async () => a.holder.increment(500_000)).finally(() => spy.mockRestore());
    expect(sizes.length).toBeGreaterThan(5);
    // The commit script carries one key per chunk; everything else stays under the configured request size.
    const commitSize = sizes.reduce((m, s) => Math.max(m, s), 0);
    expect(sizes.filter((s) => s > 64 * 1024 + 1024).length).toBeLessThanOrEqual(1);
    expect(commitSize).toBeLessThan(10 * 1024 * 1024);
    const first = a.durable.store.stats.bytesUploaded;
    await a.durable.run(a.holder, async () => a.holder.increment());
    const second = a.durable.store.stats.bytesUploaded - first;
    expect(second).toBeLessThan(first / 10);
    const manifest = (await a.durable.store.readManifest())!;
    // Committed chunks are permanent and every one of them exists; superseded ones were deleted.
    const referenced = new Set(manifest.files.flatMap((f) => f.chunks));
    const stored = await redis.keys(`${prefix}:xmtpdb:chunk:*`);
    const permanent = [];
    for (const key of stored) if ((await redis.pttl(key)) === -1) permanent.push(key.slice(key.lastIndexOf(":") + 1));
    expect(new Set(permanent)).toEqual(referenced);
  });

  it("re-uploads chunks that expired between upload and commit, then commits", async () => {
    const prefix = newPrefix();
    let dropped = 0;
    const a = await instance(prefix, {
      onStep: async (step) => {
        if (step !== "uploaded" || dropped > 0) return;
        for (const key of await redis.keys(`${prefix}:xmtpdb:chunk:*`)) dropped += await redis.del(key);
      },
    });
    await a.durable.run(a.holder, async () => a.holder.increment(20_000));
    expect(dropped).toBeGreaterThan(0);
    const b = await instance(prefix);
    expect(await b.durable.run(b.holder, async () => b.holder.read())).toBe(1);
  });

  it("carries the -wal along when connections stay open (not the -shm, which SQLite rebuilds), and the restored set has the newest data", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    // A second connection held open across the session keeps SQLite from checkpointing the WAL away.
    const keeper = createSqliteHolder(a.dbPath);
    const leaky = { release: async () => {}, discard: async () => a.holder.discard() };
    await a.durable.run(leaky, async () => {
      keeper.read();
      a.holder.increment();
      a.holder.increment();
    });
    const suffixes = (await a.durable.store.readManifest())!.files.map((f) => f.suffix).sort();
    expect(suffixes).toEqual(["", "-wal"]);
    await keeper.release();
    await a.holder.release();
    const b = await instance(prefix);
    expect(await b.durable.run(b.holder, async () => b.holder.read())).toBe(2);
  });

  it("a holder kept open between sessions: the final save takes main and WAL as they are, and what it wrote since is carried on, not thrown away", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    const holder = Object.assign(a.holder, { keptOpen: true });
    let released = 0;
    const release = holder.release.bind(holder);
    holder.release = async () => (released++, release());
    await a.durable.run(holder, async () => holder.increment(100_000));
    expect(released).toBe(0);
    expect((await a.durable.store.readManifest())?.files.map((f) => f.suffix).sort()).toEqual(["", "-wal"]);
    // Written between sessions (libxmtp finishing up, its workers): the files are no longer the saved sizes.
    holder.increment();
    const downloaded = a.durable.store.stats.bytesDownloaded;
    expect(await a.durable.run(holder, async () => holder.increment())).toEqual({ before: 2, after: 3 });
    expect(a.durable.store.stats.bytesDownloaded).toBe(downloaded);
    expect(released).toBe(0);
    // Another instance restores the newest version: what was written between sessions was saved with it.
    const b = await instance(prefix);
    expect(await b.durable.run(b.holder, async () => b.holder.read())).toBe(3);
    // A newer version made elsewhere, or files gone from disk, still mean a restore.
    await b.durable.run(b.holder, async () => b.holder.increment());
    expect(await a.durable.run(holder, async () => holder.read())).toBe(4);
    expect(a.durable.store.stats.bytesDownloaded).toBeGreaterThan(downloaded);
  });

  it("makes no new version when a session changed nothing", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await a.durable.run(a.holder, async () => a.holder.increment());
    await a.durable.run(a.holder, async () => a.holder.read());
    expect((await a.durable.store.readManifest())?.version).toBe(1);
  });

  it("refuses to run on a version that does not verify, and runs nothing", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await a.durable.run(a.holder, async () => a.holder.increment(10_000));
    const manifest = (await a.durable.store.readManifest())!;
    const victim = manifest.files[0]!.chunks[0]!;
    await redis.set(`${prefix}:xmtpdb:chunk:${victim}`, Buffer.from("tampered").toString("base64"));
    const b = await instance(prefix);
    let ran = false;
    await expect(
      b.durable.run(b.holder, async () => {
        ran = true;
      }),
    ).rejects.toBeInstanceOf(CorruptStateError);
    expect(ran).toBe(false);
  });

  it("a missing chunk is a 503 naming recovery (not a permanent 500), and nothing runs", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await a.durable.run(a.holder, async () => a.holder.increment(10_000));
    const manifest = (await a.durable.store.readManifest())!;
    await redis.del(`${prefix}:xmtpdb:chunk:${manifest.files[0]!.chunks[0]!}`);
    const b = await instance(prefix);
    let ran = false;
    const error = await b.durable
      .run(b.holder, async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as Error).message).toMatch(/npm run xmtp:recover/);
    expect(ran).toBe(false);
  });

  it("rejects the save of a holder whose lease was taken over and drops its files; the next holder goes on from the newest version", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await a.durable.run(a.holder, async () => a.holder.increment());
    await expect(
      a.durable.run(a.holder, async () => {
        a.holder.increment();
        // Paused past its lease: another holder acquires (the fence moves on).
        await redis.incr(`${prefix}:xmtpdb:fence`);
      }),
    ).rejects.toBeInstanceOf(PersistFailedError);
    expect((await a.durable.store.readManifest())?.version).toBe(1);
    expect(a.durable.localVersion).toBeNull();
    await expect(readFile(a.dbPath)).rejects.toMatchObject({ code: "ENOENT" });
    // Nothing blocks the installation: whatever was lost was never saved, so never answered as done.
    expect(await a.durable.store.readRecoveryMarker()).toBeNull();
    const b = await instance(prefix);
    expect(await b.durable.run(b.holder, async () => b.holder.increment())).toEqual({ before: 1, after: 2 });
  });

  it("a fenced holder cannot checkpoint either: a write that needs it is refused", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await a.durable.run(a.holder, async () => a.holder.increment());
    const checkpoint = await a.durable
      .run(a.holder, async () => {
        a.holder.increment();
        await redis.incr(`${prefix}:xmtpdb:fence`);
        return a.durable.checkpoint().then(() => "saved", (e: unknown) => e);
      }, { savedAhead: true })
      .catch((e: unknown) => e);
    expect(checkpoint).toBeInstanceOf(PersistFailedError);
    expect((await a.durable.store.readManifest())?.version).toBe(1);
  });

  it("checkpoints during the work: the saved version has what the work wrote so far, connections still open", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await a.durable.run(a.holder, async () => {
      a.holder.increment();
      await a.durable.checkpoint();
      a.holder.increment();
    });
    // Two versions: the checkpoint (counter 1, from an open database: main file + WAL) and the end (counter 2).
    expect((await a.durable.store.readManifest())?.version).toBe(2);
    await expect(a.durable.checkpoint()).rejects.toBeInstanceOf(PersistFailedError);
  });

  it("a checkpoint alone is enough: a session whose final save fails still answers when its writes were saved ahead", async () => {
    const prefix = newPrefix();
    let failFinal = false;
    const a = await instance(prefix, {
      onStep: (step) => {
        if (failFinal && step === "uploading") throw new Error("Redis cut");
      },
      persistBudgetMs: 100,
    });
    const value = await a.durable.run(
      a.holder,
      async () => {
        a.holder.increment();
        await a.durable.checkpoint();
        failFinal = true;
        return "answered";
      },
      { savedAhead: true },
    );
    expect(value).toBe("answered");
    expect((await a.durable.store.readManifest())?.version).toBe(1);
    expect(await a.durable.store.readRecoveryMarker()).toBeNull();
    const b = await instance(prefix);
    expect(await b.durable.run(b.holder, async () => b.holder.read())).toBe(1);
  });

  it("a first session never starts from stray local files (a salt without its database)", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix);
    await writeFile(a.dbPath + ".sqlcipher_salt", "stale salt");
    await a.durable.run(a.holder, async () => a.holder.increment());
    const manifest = (await a.durable.store.readManifest())!;
    expect(manifest.files.map((f) => f.suffix)).not.toContain(".sqlcipher_salt");
  });
});
