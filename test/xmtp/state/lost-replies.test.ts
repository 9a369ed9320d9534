import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createRedis } from "../../../lib/shared/redis.js";
import { createDurableDatabase } from "../../../lib/xmtp/state/durable-database.js";
import { acquireLease } from "../../../lib/xmtp/state/lease.js";
import { startCuttableProxy, type CuttableProxy } from "../../support/cuttable-proxy.js";
import { createSqliteHolder } from "../../support/sqlite-holder.js";

// The Upstash client sends a request again when `fetch` throws, which it also does when the command ran and only
// its reply was lost. The lease and commit scripts must give the same answer to that second copy.
const upstash = inject("upstash");
const direct = createRedis(upstash, { plainResponses: true });
let proxy: CuttableProxy;
beforeAll(async () => {
  proxy = await startCuttableProxy(upstash.url);
});
afterAll(() => proxy.close());
const viaProxy = () => createRedis({ url: proxy.url, token: upstash.token }, { plainResponses: true });
const newPrefix = () => `lost${Math.random().toString(36).slice(2)}`;

describe("scripts sent again after a lost reply (Upstash client retries)", () => {
  it("a lease whose ACQUIRE reply was lost is still this caller's, with one fencing number", async () => {
    const prefix = newPrefix();
    const keys = { leaseKey: `${prefix}:lease`, fenceKey: `${prefix}:fence` };
    proxy.loseNextReply((body) => body.includes(keys.leaseKey) && body.includes("'NX'"));
    const lost = proxy.lostReplies;
    const lease = await acquireLease(viaProxy(), { ...keys, ttlMs: 30_000, waitMs: 1000 });
    expect(proxy.lostReplies).toBe(lost + 1);
    expect(lease.fence).toBe(1);
    expect(await direct.get(keys.fenceKey)).toBe("1");
    expect(await direct.get(keys.leaseKey)).toBe(lease.token);
    await lease.release();
    expect(await direct.get(keys.leaseKey)).toBeNull();
  });

  it("a COMMIT whose reply was lost is answered as committed, and the session's next save builds on it", async () => {
    const prefix = newPrefix();
    const dbPath = join(await mkdtemp(join(tmpdir(), "lost-")), "x.db3");
    const durable = createDurableDatabase({ redis: viaProxy(), keyPrefix: prefix, dbPath, chunkSize: 4096, leaseTtlMs: 5000, leaseWaitMs: 2000 });
    const holder = createSqliteHolder(dbPath);
    const lost = proxy.lostReplies;
    const answer = await durable.run(holder, async () => {
      holder.increment();
      proxy.loseNextReply((body) => body.includes(`${prefix}:xmtpdb:manifest`) && body.includes("'conflict'"));
      await durable.checkpoint();
      holder.increment();
      return "done";
    });
    expect(proxy.lostReplies).toBe(lost + 1);
    expect(answer).toBe("done");
    // The checkpoint (version 1) and the final save (version 2) both committed.
    expect((await durable.store.readManifest())?.version).toBe(2);
  });
});
