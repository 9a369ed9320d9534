import { describe, expect, it } from "vitest";
import { createAdmissionQueue, MAX_ADMISSION_AGE_MS } from "../../lib/stores/admission-queue.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const prefix = () => `aq${Math.random().toString(36).slice(2)}`;
const addr = (n: number): `0x${string}` => `0x${n.toString(16).padStart(40, "0")}`;
const inbox = (n: number) => n.toString(16).padStart(64, "a");

describe("admission queue", () => {
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
    await q.enqueue("g", { address: addr(2), inboxId: inbox(2), source: "webhook" });
    await q.complete("g", [{ address: addr(1), outcome: "added" }]);
    await q.forget("g", [addr(1), addr(2)]);
    expect(await q.outcome("g", addr(1))).toBeNull();
    expect(await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" })).toEqual({ state: "queued" });
    // One still waiting is not forgotten: it is being served.
    expect((await q.take("g", 10)).map((a) => a.address)).toEqual([addr(2), addr(1)]);
  });

  it("drops an admission nobody served within a minute: it is never carried out late, and a new request starts afresh", async () => {
    let clock = Date.parse("2026-06-01T00:00:00Z");
    const q = createAdmissionQueue(redis, prefix(), () => new Date(clock));
    await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "webhook" });
    clock += MAX_ADMISSION_AGE_MS + 1;
    expect(await q.take("g", 10)).toEqual([]);
    expect(await q.groups()).toEqual([]);
    expect(await q.enqueue("g", { address: addr(1), inboxId: inbox(1), source: "join-page" })).toEqual({ state: "queued" });
    expect((await q.take("g", 10)).map((a) => a.source)).toEqual(["join-page"]);
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
