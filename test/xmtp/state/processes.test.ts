import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject, describe, expect, it } from "vitest";
import { createRedis } from "../../../lib/shared/redis.js";
import { createDurableDatabase, type SessionStep } from "../../../lib/xmtp/state/durable-database.js";
import { createSqliteHolder } from "../../support/sqlite-holder.js";
import { runWorker } from "../../support/spawn-worker.js";

const upstash = inject("upstash");
const dir = () => mkdtemp(join(tmpdir(), "ddbp-"));

/** Reads the committed counter the way a brand-new instance would (restore into an empty dir, verified). */
async function committedValue(prefix: string): Promise<{ value: number; version: number }> {
  const dbPath = join(await dir(), "check.db3");
  const durable = createDurableDatabase({ redis: createRedis(upstash, { plainResponses: true }), keyPrefix: prefix, dbPath, chunkSize: 4096, leaseWaitMs: 30_000 });
  const holder = createSqliteHolder(dbPath);
  const value = await durable.run(holder, async () => holder.read());
  return { value, version: durable.localVersion ?? 0 };
}

describe("durable database across real processes", () => {
  it("N processes incrementing in sessions end at exactly N×k, with strictly increasing versions and no stale opens", async () => {
    const prefix = `ddbp${Math.random().toString(36).slice(2)}`;
    const processes = 5;
    const iterations = 4;
    const results = await Promise.all(
      Array.from({ length: processes }, async () => runWorker({ ...upstash, prefix, dbPath: join(await dir(), "x.db3"), iterations })),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const acks = results.flatMap((r) => r.acks).sort((a, b) => a.value - b.value);
    expect(acks.map((a) => a.value)).toEqual(Array.from({ length: processes * iterations }, (_, i) => i + 1));
    // Every session saw exactly the newest committed state: the counter it read equals the version it restored.
    for (const ack of acks) {
      expect(ack.before).toBe(ack.baseVersion);
      expect(ack.version).toBe(ack.value);
    }
    expect(await committedValue(prefix)).toEqual({ value: processes * iterations, version: processes * iterations });
  }, 120_000);

  it.each<SessionStep>(["leased", "restored", "worked", "upload-batch", "uploaded"])(
    "a process killed (SIGKILL) at '%s' leaves the latest committed version intact and never older than an acknowledged one",
    async (step) => {
      const prefix = `ddbc${Math.random().toString(36).slice(2)}`;
      const base = { ...upstash, prefix, leaseTtlMs: 500, padBytes: 30_000, maxRequestBytes: 16 * 1024 };
      const victim = await runWorker({ ...base, dbPath: join(await dir(), "v.db3"), iterations: 3, crashAt: step, crashOnIteration: 1 });
      expect(victim.signal).toBe("SIGKILL");
      expect(victim.acks.map((a) => a.value)).toEqual([1]);
      const acknowledged = Math.max(...victim.acks.map((a) => a.value));

      const survivor = await runWorker({ ...base, dbPath: join(await dir(), "s.db3"), iterations: 2 });
      expect(survivor.code, survivor.stderr).toBe(0);
      const final = await committedValue(prefix);
      expect(final.value).toBeGreaterThanOrEqual(acknowledged + 2);
      expect(final.value).toBe(final.version);
      expect(survivor.acks.map((a) => a.value)).toEqual([final.value - 1, final.value]);
    },
    60_000,
  );
});
