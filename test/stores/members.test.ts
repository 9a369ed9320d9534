import { describe, expect, it } from "vitest";
import { createMemberStore } from "../../lib/stores/members.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const prefix = () => `mem${Math.random().toString(36).slice(2)}`;
const addr = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as const;

describe("member store (real Redis)", () => {
  it("records how each member joined: replace, keep, or exempt (keeping the first join time)", async () => {
    let t = 0;
    const members = createMemberStore(redis, prefix(), () => new Date(1_700_000_000_000 + t++ * 1000));
    await members.record("g", addr(1), "webhook", "replace");
    await members.record("g", addr(1), "join-page", "keep");
    await members.record("g", addr(2), "join-page", "replace");
    await members.record("g", addr(2), "operator", "exempt");
    await members.record("g", addr(3), "operator", "exempt");
    const list = new Map((await members.list("g")).map((m) => [m.address, m]));
    expect(list.get(addr(1))).toEqual({ address: addr(1), joinedAt: new Date(1_700_000_000_000).toISOString(), via: "webhook" });
    expect(list.get(addr(2))).toEqual({ address: addr(2), joinedAt: new Date(1_700_000_002_000).toISOString(), via: "operator" });
    expect(list.get(addr(3))?.via).toBe("operator");
    await members.remove("g", [addr(1), addr(3)]);
    expect((await members.list("g")).map((m) => m.address)).toEqual([addr(2)]);
    expect(await members.count("g")).toBe(1);
  });

  it("lists a damaged record as via unknown (re-verified like a rules join, never exempt) and skips a field that is not a stored address", async () => {
    const p = prefix();
    const members = createMemberStore(redis, p);
    await members.record("g", addr(7), "webhook", "replace");
    const good = JSON.stringify({ joinedAt: new Date().toISOString(), via: "webhook" });
    await redis.hset(`${p}:members:g`, {
      "0xNOTLOWER00000000000000000000000000000000": good,
      [addr(8)]: "{broken",
      [addr(9)]: JSON.stringify({ joinedAt: "yesterday", via: "webhook" }),
      [addr(10)]: JSON.stringify({ joinedAt: new Date().toISOString(), via: "stowaway" }),
    });
    const list = new Map((await members.list("g")).map((m) => [m.address, m]));
    expect([...list.keys()].sort()).toEqual([addr(7), addr(8), addr(9), addr(10)].sort());
    expect(list.get(addr(7))?.via).toBe("webhook");
    for (const damaged of [addr(8), addr(9), addr(10)]) expect(list.get(damaged)).toEqual({ address: damaged, joinedAt: null, via: "unknown" });
  });
});
