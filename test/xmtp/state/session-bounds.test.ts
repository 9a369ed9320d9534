import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { DependencyUnavailableError } from "../../../lib/shared/errors.js";
import { createRedis } from "../../../lib/shared/redis.js";
import { createDurableDatabase, SESSION_BUDGET_MS, type DurableDatabaseOptions } from "../../../lib/xmtp/state/durable-database.js";
import { acquireLease } from "../../../lib/xmtp/state/lease.js";
import { createSqliteHolder } from "../../support/sqlite-holder.js";

// Every session ends within one deadline that fits the function's maxDuration: the wait on this instance, the
// lease wait, the work and the save included. A holder that loses its lease stops at once.
const redis = createRedis(inject("upstash"), { plainResponses: true });
const newPrefix = () => `bound${Math.random().toString(36).slice(2)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const instance = async (prefix: string, extra: Partial<DurableDatabaseOptions> = {}) => {
  const dbPath = join(await mkdtemp(join(tmpdir(), "bound-")), "x.db3");
  const durable = createDurableDatabase({ redis, keyPrefix: prefix, dbPath, chunkSize: 4096, leaseTtlMs: 2000, leaseWaitMs: 15_000, ...extra });
  return { durable, holder: createSqliteHolder(dbPath) };
};
/** How a run ended, and how long after `since` it did. */
const settle = async (run: Promise<unknown>, since: number) => {
  const result = await run.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return { ...result, afterMs: Date.now() - since };
};

describe("session bounds", () => {
  it("the default session budget, with the time a request needs around it, fits vercel.json's maxDuration", () => {
    const vercel = JSON.parse(readFileSync(join(process.cwd(), "vercel.json"), "utf8")) as { functions: Record<string, { maxDuration: number }> };
    const maxDurationMs = vercel.functions["api/**/*.ts"]!.maxDuration * 1000;
    expect(SESSION_BUDGET_MS + 10_000).toBeLessThanOrEqual(maxDurationMs);
  });

  it("counts the wait on this instance's mutex: a session that waited its time away there is refused (503) without running", async () => {
    const a = await instance(newPrefix(), { sessionBudgetMs: 3000, saveReserveMs: 600 });
    const first = a.durable.run(a.holder, async () => {
      a.holder.increment();
      await sleep(2000);
    });
    const called = Date.now();
    let ran = false;
    const second = await settle(
      a.durable.run(a.holder, async () => {
        ran = true;
        await sleep(1000);
      }),
      called,
    );
    await first;
    expect(second.ok).toBe(false);
    expect(second.ok ? null : second.error).toBeInstanceOf(DependencyUnavailableError);
    expect(ran).toBe(false);
    expect(second.afterMs).toBeLessThan(3000 + 300);
  });

  it("bounds the lease wait by what is left of the session", async () => {
    const prefix = newPrefix();
    const other = await acquireLease(redis, { leaseKey: `${prefix}:xmtpdb:lease`, fenceKey: `${prefix}:xmtpdb:fence`, ttlMs: 20_000, waitMs: 100 });
    const a = await instance(prefix, { sessionBudgetMs: 3000, saveReserveMs: 500 });
    const called = Date.now();
    const ended = await settle(a.durable.run(a.holder, async () => a.holder.increment()), called);
    await other.release();
    expect(ended.ok ? null : ended.error).toBeInstanceOf(DependencyUnavailableError);
    expect(ended.afterMs).toBeLessThan(3000 + 300);
  });

  it("stops waiting for work that overruns: a 503 by the deadline, nothing of it committed, and the next session carries on", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix, { sessionBudgetMs: 3000, saveReserveMs: 500 });
    await a.durable.run(a.holder, async () => a.holder.increment());
    const called = Date.now();
    let deadlineSeen = 0;
    const ended = await settle(
      a.durable.run(a.holder, async () => {
        deadlineSeen = a.durable.workDeadline;
        a.holder.increment();
        await sleep(8000);
      }),
      called,
    );
    expect(ended.ok ? null : ended.error).toBeInstanceOf(DependencyUnavailableError);
    expect(ended.afterMs).toBeLessThan(3000 + 300);
    // What the work may start new network work until leaves room for the save within the session.
    expect(deadlineSeen).toBeLessThanOrEqual(called + 3000 - 500);
    expect((await a.durable.store.readManifest())?.version).toBe(1);
    const b = await instance(prefix);
    expect(await b.durable.run(b.holder, async () => b.holder.increment())).toEqual({ before: 1, after: 2 });
  }, 20_000);

  it("stops the work as soon as the lease is lost (503), and refuses its checkpoints from then on", async () => {
    const prefix = newPrefix();
    const a = await instance(prefix, { leaseTtlMs: 600 });
    await a.durable.run(a.holder, async () => a.holder.increment());
    let checkpointAfterLoss: unknown = "not tried";
    const called = Date.now();
    const ended = await settle(
      a.durable.run(a.holder, async () => {
        // Paused past its lease: another holder took it (its token, a newer fence).
        await redis.set(`${prefix}:xmtpdb:lease`, "another-holder", { px: 20_000 });
        await redis.incr(`${prefix}:xmtpdb:fence`);
        await sleep(1500);
        a.holder.increment();
        checkpointAfterLoss = await a.durable.checkpoint().then(() => "saved", (e: unknown) => e);
        await sleep(5000);
      }),
      called,
    );
    expect(ended.ok ? null : ended.error).toBeInstanceOf(DependencyUnavailableError);
    // Noticed at the next renewal (a third of the TTL), not when the work ends.
    expect(ended.afterMs).toBeLessThan(1500);
    await sleep(2000);
    expect(checkpointAfterLoss).toBeInstanceOf(DependencyUnavailableError);
    expect((await a.durable.store.readManifest())?.version).toBe(1);
  }, 20_000);
});
