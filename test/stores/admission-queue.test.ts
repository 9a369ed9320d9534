import { describe, expect, it } from "vitest";
import { createAdmissionQueue, MAX_ADMISSION_AGE_MS } from "../../lib/stores/admission-queue.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const prefix = () => `aq${Math.random().toString(36).slice(2)}`;
const addr = (n: number): `0x${string}` => `0x${n.toString(16).padStart(40, "0")}`;
const inbox = (n: number) => n.toString(16).padStart(64, "a");

describe("admission queue", () => {
  it("lists groups oldest first: by when the first in line of each was queued (Redis's clock), not in set order", async () => {
    const q = createAdmissionQueue(redis, prefix());
    const order = ["g5", "g2", "g9", "g1", "g7", "g3"];
    for (const [i, g] of order.entries()) {
      await q.enqueue(g, { address: addr(i + 1), inboxId: inbox(i + 1), source: "webhook" });
      await new Promise((r) => setTimeout(r, 3));
    }
    // A later admission in an old group does not make the group younger.
    await q.enqueue("g5", { address: addr(99), inboxId: inbox(99), source: "webhook" });
    expect(await q.groupsOldestFirst()).toEqual(order);
    await q.complete("g5", [{ address: addr(1), outcome: "added" }]);
    expect(await q.groupsOldestFirst()).toEqual([...order.slice(1), "g5"]);
  });

  it("keeps admissions in line per group, hands them to the holder, and each ends once with its outcome", async () => {
    const q = createAdmissionQueue(redis, prefix());
    for (let i = 1; i <= 3; i++) expect(await q.enqueue("g", { address: addr(i), inboxId: inbox(i), source: "webhook" })).toEqual({ state: "queued" });
    await q.enqueue("h", { address: addr(9), inboxId: inbox(9), source: "join-page" });
    expect((await q.groups()).sort()).toEqual(["g", "h"]);
    expect((await q.take("g", 10)).map((a) => a.address)).toEqual([addr(1), addr(2), addr(3)]);
    expect(await q.outcome("g", addr(1))).toBeNull();
    await q.complete("g", [
      { address: addr(1), outcome: "added" },
      { address: addr(2), outcome: "full" },
      { address: addr(3), outcome: "already-member" },
    ]);
    expect(await q.outcome("g", addr(2))).toBe("full");
    expect(await q.take("g", 10)).toEqual([]);
    expect(await q.groups()).toEqual(["h"]);
  });

  it("a second request for a waiting wallet joins its admission; a retry after SUCCESS reads it; a refusal is asked again", async () => {
    const q = createAdmissionQueue(redis, prefix());
    await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" });
    expect(await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" })).toEqual({ state: "queued" });
    expect(await q.take("g", 10)).toHaveLength(1);
    await q.complete("g", [{ address: addr(1), outcome: "added" }]);
    // The person's request gave up before this; their retry is answered without a new admission.
    expect(await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" })).toEqual({ state: "done", outcome: "added" });
    expect(await q.take("g", 10)).toEqual([]);

    await q.enqueue("g", { address: addr(2), inboxId: inbox(2), source: "webhook" });
    await q.complete("g", [{ address: addr(2), outcome: "full" }]);
    expect(await q.enqueue("g", { address: addr(2), inboxId: inbox(2), source: "webhook" })).toEqual({ state: "queued" });
  });

  it("forgets how an admission ended once the wallet is removed: a later join is a new admission", async () => {
    const q = createAdmissionQueue(redis, prefix());
    await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" });
    await q.complete("g", [{ address: addr(1), outcome: "added" }]);
    await q.forget("g", [addr(1)]);
    expect(await q.outcome("g", addr(1))).toBeNull();
    expect(await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" })).toEqual({ state: "queued" });
    expect((await q.take("g", 10)).map((a) => a.address)).toEqual([addr(1)]);
  });

  it("a removal ends an admission still waiting: it leaves the queue (never adds them back) and its waiter is answered", async () => {
    const q = createAdmissionQueue(redis, prefix());
    await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" });
    await q.enqueue("g", { address: addr(2), inboxId: inbox(2), source: "webhook" });
    await q.forget("g", [addr(1)]);
    expect(await q.outcome("g", addr(1))).toBe("unavailable");
    expect((await q.take("g", 10)).map((a) => a.address)).toEqual([addr(2)]);
    await q.forget("g", [addr(2)]);
    expect(await q.groups()).toEqual([]);
    // Asking again is a new admission.
    expect(await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "join-page" })).toEqual({ state: "queued" });
  });

  it("drops an admission nobody served within a minute: it is never carried out late, and a new request starts afresh", async () => {
    const p = prefix();
    const q = createAdmissionQueue(redis, p);
    await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" });
    // A minute and more passes (by Redis's clock, which the queue reads): the record is aged by hand.
    const key = `${p}:adm:g:${addr(1)}`;
    const record = JSON.parse((await redis.get<string>(key))!) as { atMs: number };
    await redis.set(key, JSON.stringify({ ...record, atMs: record.atMs - MAX_ADMISSION_AGE_MS - 1 }));
    expect(await q.take("g", 10)).toEqual([]);
    expect(await q.groups()).toEqual([]);
    expect(await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "join-page" })).toEqual({ state: "queued" });
    expect((await q.take("g", 10)).map((a) => a.source)).toEqual(["join-page"]);
  });

  it("compares an admission's age on Redis's clock: instances whose clocks disagree neither drop nor keep it wrongly", async () => {
    const p = prefix();
    // The instance that queues runs 90 s behind, the one that serves on time (and a third 90 s ahead).
    const behind = createAdmissionQueue(redis, p, () => new Date(Date.now() - 90_000));
    const onTime = createAdmissionQueue(redis, p);
    const ahead = createAdmissionQueue(redis, p, () => new Date(Date.now() + 90_000));
    await behind.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" });
    expect((await onTime.take("g", 10)).map((a) => a.address)).toEqual([addr(1)]);
    expect((await ahead.take("g", 10)).map((a) => a.address)).toEqual([addr(1)]);
    // A second request from an instance ahead joins the waiting admission rather than starting another.
    expect(await ahead.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" })).toEqual({ state: "queued" });
    expect(await onTime.take("g", 10)).toHaveLength(1);
  });

  it("keeps every outcome for as long as a waiter can wait (a whole function run, 60 s), whatever it is", async () => {
    const p = prefix();
    const q = createAdmissionQueue(redis, p);
    const outcomes = ["added", "already-member", "not-on-xmtp", "full", "refused", "unavailable", "group-gone"] as const;
    for (const [i, outcome] of outcomes.entries()) {
      await q.enqueue("g", { address: addr(i + 1), inboxId: inbox(i + 1), source: "webhook" });
      await q.complete("g", [{ address: addr(i + 1), outcome }]);
    }
    const ttls = await Promise.all(outcomes.map((_, i) => redis.pttl(`${p}:adm:g:${addr(i + 1)}`)));
    for (const ttl of ttls) expect(ttl).toBeGreaterThanOrEqual(60_000);
  });

  it("tells a waiter watching its admission when it has ended", async () => {
    const q = createAdmissionQueue(redis, prefix());
    await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" });
    const watch = q.watch("g", addr(1));
    expect(watch.until(await redis.get<string>(watch.key))).toBe(false);
    await q.complete("g", [{ address: addr(1), outcome: "added" }]);
    expect(watch.until(await redis.get<string>(watch.key))).toBe(true);
    expect(watch.until(null)).toBe(false);
  });
});
