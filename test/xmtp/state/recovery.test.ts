import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject, describe, expect, it } from "vitest";
import { createRedis } from "../../../lib/shared/redis.js";
import { createDurableDatabase, NeedsRecoveryError, PersistFailedError } from "../../../lib/xmtp/state/durable-database.js";
import { recoverInstallation } from "../../../lib/xmtp/state/recovery.js";
import { CorruptStateError } from "../../../lib/shared/errors.js";
import { createSqliteHolder } from "../../support/sqlite-holder.js";

const redis = createRedis(inject("upstash"), { plainResponses: true });

async function brokenInstallation() {
  const prefix = `rec${Math.random().toString(36).slice(2)}`;
  const dbPath = join(await mkdtemp(join(tmpdir(), "rec-")), "x.db3");
  const durable = createDurableDatabase({ redis, keyPrefix: prefix, dbPath, chunkSize: 4096 });
  const holder = createSqliteHolder(dbPath);
  await durable.run(holder, async () => holder.increment(10_000));
  await durable.store.recordInstallation({ installationId: "aa".repeat(32), inboxId: "bb".repeat(32), address: "0x1" });
  // A fenced session leaves pending uploads behind (they expire by themselves)…
  await expect(
    durable.run(holder, async () => {
      holder.increment();
      await redis.incr(`${prefix}:xmtpdb:fence`);
    }),
  ).rejects.toBeInstanceOf(PersistFailedError);
  // …and the marker is what an operator (or a release before write-ahead saving) sets on a broken installation.
  await durable.store.markNeedsRecovery({ at: new Date().toISOString(), reason: "forked", installationId: "aa".repeat(32), version: 1 });
  return { prefix, durable, holder };
}

describe("recovering an installation marked needs-recovery", () => {
  it("retires the stored database, revokes the broken installation, and lets the next session start afresh", async () => {
    const { prefix, durable, holder } = await brokenInstallation();
    await expect(durable.run(holder, async () => holder.read())).rejects.toBeInstanceOf(NeedsRecoveryError);
    const revoked: string[][] = [];
    const report = await recoverInstallation({ redis, store: durable.store, revoke: async (_inbox, ids) => void revoked.push([...ids]) });
    expect(report).toMatchObject({ status: "recovered", retiredInstallationId: "aa".repeat(32), retiredVersion: 1, revoked: true });
    expect(revoked).toEqual([["aa".repeat(32)]]);
    expect(await durable.store.readRecoveryMarker()).toBeNull();
    // Committed chunks are gone; only the fenced session's pending uploads remain, and they expire by themselves.
    for (const key of await redis.keys(`${prefix}:xmtpdb:chunk:*`)) expect(await redis.pttl(key)).toBeGreaterThan(0);
    expect(await redis.keys(`${prefix}:xmtpdb:manifest:retired:*`)).toHaveLength(1);
    // First run again: a new database (a new installation, for XMTP) committed as version 1.
    expect(await durable.run(holder, async () => holder.increment())).toEqual({ before: 0, after: 1 });
    expect((await durable.store.readManifest())?.version).toBe(1);
  });

  it("does nothing when nothing is marked, and refuses a second recovery within a day unless forced", async () => {
    const { durable } = await brokenInstallation();
    const deps = { redis, store: durable.store, revoke: async () => {} };
    expect((await recoverInstallation(deps)).status).toBe("recovered");
    expect(await recoverInstallation(deps)).toEqual({ status: "nothing-to-do" });
    await durable.store.markNeedsRecovery({ at: "", reason: "again", installationId: null, version: 0 });
    const refused = await recoverInstallation(deps);
    expect(refused.status).toBe("refused");
    expect((await recoverInstallation(deps, { force: true })).status).toBe("recovered");
  });

  it("still resets the state when revoking fails, and says so", async () => {
    const { durable } = await brokenInstallation();
    const report = await recoverInstallation({ redis, store: durable.store, revoke: () => Promise.reject(new Error("network down")) });
    expect(report).toMatchObject({ status: "recovered", revoked: false, revokeError: "network down" });
    expect(await durable.store.readRecoveryMarker()).toBeNull();
  });

  it("reads stored records through their schemas: an unreadable marker still stops XMTP work, an unreadable installation record stops a recovery unless forced", async () => {
    const { durable } = await brokenInstallation();
    expect(await durable.store.readInstallation()).toMatchObject({ installationId: "aa".repeat(32), inboxId: "bb".repeat(32) });
    await redis.set(durable.store.keys.recovery, "{garbled");
    expect(await durable.store.readRecoveryMarker()).toMatchObject({ reason: "unreadable marker" });
    await redis.set(durable.store.keys.installation, JSON.stringify({ installationId: 5 }));
    await expect(durable.store.readInstallation()).rejects.toBeInstanceOf(CorruptStateError);
    const revoked: string[] = [];
    const deps = { redis, store: durable.store, revoke: async (_inbox: string, ids: readonly string[]) => void revoked.push(...ids) };
    // Without the record there is nothing to revoke: refused, and nothing reset.
    expect(await recoverInstallation(deps)).toMatchObject({ status: "refused", reason: expect.stringMatching(/cannot be read/) as unknown });
    expect(await durable.store.readManifest()).not.toBeNull();
    expect(await recoverInstallation(deps, { force: true })).toMatchObject({ status: "recovered", revoked: false, retiredInstallationId: null });
    expect(revoked).toEqual([]);
    // A recovery history entry that cannot be read counts as recent.
    await durable.store.markNeedsRecovery({ at: "", reason: "again", installationId: null, version: 0 });
    await redis.lpush(durable.store.keys.history, "not json");
    expect((await recoverInstallation(deps)).status).toBe("refused");
  });
});
