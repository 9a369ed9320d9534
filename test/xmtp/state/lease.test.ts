import { describe, expect, it } from "vitest";
import { acquireLease, LeaseTimeoutError } from "../../../lib/xmtp/state/lease.js";
import { testRedis } from "../../support/test-app.js";

const redis = testRedis();
const keys = () => {
  const p = `lease${Math.random().toString(36).slice(2)}`;
  return { leaseKey: `${p}:lease`, fenceKey: `${p}:fence` };
};

describe("lease with fencing", () => {
  it("hands out strictly increasing fencing numbers", async () => {
    const k = keys();
    const a = await acquireLease(redis, { ...k, ttlMs: 5000, waitMs: 1000 });
    await a.release();
    const b = await acquireLease(redis, { ...k, ttlMs: 5000, waitMs: 1000 });
    await b.release();
    expect(b.fence).toBeGreaterThan(a.fence);
  });

  it("makes a second caller wait, and gives up with a 503-class error in bounded time", async () => {
    const k = keys();
    const held = await acquireLease(redis, { ...k, ttlMs: 5000, waitMs: 1000 });
    const started = Date.now();
    await expect(acquireLease(redis, { ...k, ttlMs: 5000, waitMs: 300 })).rejects.toBeInstanceOf(LeaseTimeoutError);
    expect(Date.now() - started).toBeLessThan(1500);
    const waiting = acquireLease(redis, { ...k, ttlMs: 5000, waitMs: 3000 });
    setTimeout(() => void held.release(), 200);
    const next = await waiting;
    expect(next.fence).toBe(held.fence + 1);
    await next.release();
  });

  it("stays held past its TTL while renewed, and is taken over once it expires unrenewed", async () => {
    const k = keys();
    const held = await acquireLease(redis, { ...k, ttlMs: 300, waitMs: 100 });
    await new Promise((r) => setTimeout(r, 800));
    expect(held.held).toBe(true);
    await expect(acquireLease(redis, { ...k, ttlMs: 300, waitMs: 50 })).rejects.toBeInstanceOf(LeaseTimeoutError);
    await held.release();
    // A holder that stops renewing (paused, killed): simulated by a raw SET with a short expiry.
    await redis.set(k.leaseKey, "someone-else", { px: 200 });
    const taken = await acquireLease(redis, { ...k, ttlMs: 300, waitMs: 2000 });
    expect(taken.fence).toBeGreaterThan(held.fence);
    await taken.release();
  });

  it("release does not delete a lease someone else now holds", async () => {
    const k = keys();
    const a = await acquireLease(redis, { ...k, ttlMs: 5000, waitMs: 100 });
    await redis.set(k.leaseKey, "other");
    await a.release();
    expect(await redis.get(k.leaseKey)).toBe("other");
  });
});
