import { describe, expect, it } from "vitest";
import { withEligibilityCache } from "../../lib/eligibility/cache.js";
import { EligibilitySourceError, type EligibilityChecker } from "../../lib/eligibility/evaluate.js";
import type { Rules } from "../../lib/shared/rules.js";
import type { Address } from "../../lib/shared/address.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const owner = ("0x" + "33".repeat(20)) as Address;

describe("eligibility cache (Redis)", () => {
  it("answers a repeat within the TTL from Redis, per group and rules, and never caches failures", async () => {
    let calls = 0;
    let fail = false;
    const inner: EligibilityChecker = {
      check: async () => {
        calls++;
        if (fail) throw new EligibilitySourceError("down");
        return { eligible: false, reason: "nope" };
      },
    };
    const prefix = `cache${Math.random().toString(36).slice(2)}`;
    const cached = withEligibilityCache(inner, redis, prefix, 60);
    const rules: Rules = { type: "poap", eventId: 1 };
    expect(await cached.check(rules, owner, "g1")).toEqual({ eligible: false, reason: "nope" });
    expect(await cached.check(rules, owner, "g1")).toEqual({ eligible: false, reason: "nope" });
    expect(calls).toBe(1);
    await cached.check({ type: "poap", eventId: 2 }, owner, "g1"); // other rules: not the same answer
    await cached.check(rules, owner, "g2"); // other group
    expect(calls).toBe(3);
    fail = true;
    await expect(cached.check({ type: "poap", eventId: 3 }, owner, "g1")).rejects.toBeInstanceOf(EligibilitySourceError);
    fail = false;
    expect(await cached.check({ type: "poap", eventId: 3 }, owner, "g1")).toEqual({ eligible: false, reason: "nope" });
    const keys = await redis.keys(`${prefix}:elig:g1:*`);
    expect(keys).toHaveLength(3);
    for (const key of keys) expect(await redis.ttl(key)).toBeGreaterThan(50);
  });

  it("keys answers by the person's current wallets: a newly linked wallet is counted at once, the order does not matter", async () => {
    const seen: (readonly Address[])[] = [];
    const inner: EligibilityChecker = { check: async (_rules, wallets) => (seen.push(wallets as readonly Address[]), seen.length > 1 ? { eligible: true } : { eligible: false, reason: "no" }) };
    const cached = withEligibilityCache(inner, redis, `cache${Math.random().toString(36).slice(2)}`, 60);
    const rules: Rules = { type: "poap", eventId: 4 };
    const second = ("0x" + "44".repeat(20)) as Address;
    expect(await cached.check(rules, [owner], "g")).toEqual({ eligible: false, reason: "no" });
    expect(await cached.check(rules, [owner, second], "g")).toEqual({ eligible: true });
    expect(await cached.check(rules, [second, owner], "g")).toEqual({ eligible: true });
    expect(seen).toEqual([[owner], [owner, second]]);
  });

  it("asks again when the cached answer is not one it wrote", async () => {
    let calls = 0;
    const inner: EligibilityChecker = { check: async () => (calls++, { eligible: true }) };
    const prefix = `cache${Math.random().toString(36).slice(2)}`;
    const cached = withEligibilityCache(inner, redis, prefix, 60);
    const rules: Rules = { type: "poap", eventId: 9 };
    expect(await cached.check(rules, owner, "g")).toEqual({ eligible: true });
    const [key] = await redis.keys(`${prefix}:elig:*`);
    for (const junk of ["{", JSON.stringify({ eligible: false }), JSON.stringify({ eligible: "yes" })]) {
      await redis.set(key!, junk);
      expect(await cached.check(rules, owner, "g"), junk).toEqual({ eligible: true });
    }
    expect(calls).toBe(4);
    expect(cached.stats).toEqual({ hits: 0, misses: 4 });
  });
});
