import { describe, expect, it } from "vitest";
import { createAuditLog, AUDIT_LOG_CAP } from "../../lib/stores/audit-log.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const prefix = () => `audit${Math.random().toString(36).slice(2)}`;
const addr = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as const;
const [FIRST, LAST, LAST_DENIED] = [addr(0xf1), addr(0x1a), addr(0xde)];

describe("audit log", () => {
  it("keeps changes and denials newest first, each capped, so a flood of denials cannot push changes out", async () => {
    const p = prefix();
    let t = 0;
    const audit = createAuditLog(redis, p, () => new Date(1_700_000_000_000 + t++ * 1000));
    await audit.append("g", { source: "webhook", action: "join", address: FIRST, outcome: "added" });
    // A flood of wallets the rules turn away (seeded in one pipeline; the next append trims).
    const pipe = redis.pipeline();
    for (let i = 0; i < AUDIT_LOG_CAP + 4; i++) {
      pipe.lpush(`${p}:audit:denials:g`, JSON.stringify({ at: new Date(1_700_000_100_000 + i).toISOString(), source: "join-page", action: "join", address: addr(i), outcome: "denied", reason: "no" }));
    }
    await pipe.exec();
    t = 200;
    await audit.append("g", { source: "join-page", action: "join", address: LAST_DENIED, outcome: "denied", reason: "no" });
    await audit.append("g", { source: "operator", action: "add", address: LAST, outcome: "added" });

    const changes = await audit.list("g", { offset: 0, limit: 10, kind: "changes" });
    expect(changes.entries.map((e) => e.address)).toEqual([LAST, FIRST]);
    const denials = await audit.list("g", { offset: 0, limit: 2, kind: "denials" });
    expect(denials.total).toBe(AUDIT_LOG_CAP);
    expect(denials.entries[0]).toMatchObject({ address: LAST_DENIED, outcome: "denied" });
    // Both, merged newest first.
    const all = await audit.list("g", { offset: 0, limit: 3 });
    expect(all.total).toBe(AUDIT_LOG_CAP + 2);
    expect(all.entries.map((e) => e.address)).toEqual([LAST, LAST_DENIED, addr(AUDIT_LOG_CAP + 3)]);
  });

  it("skips lines it did not write (not JSON, another shape, an address not as stored) instead of failing the page", async () => {
    const p = prefix();
    const audit = createAuditLog(redis, p);
    await audit.append("g", { source: "webhook", action: "join", address: FIRST, outcome: "added" });
    const good = { at: new Date().toISOString(), source: "webhook", action: "join", outcome: "added" };
    await redis.lpush(`${p}:audit:g`, "{not json", JSON.stringify({ ...good, address: "0xABC" }), JSON.stringify({ ...good, address: LAST, outcome: "exploded" }));
    await audit.append("g", { source: "operator", action: "add", address: LAST, outcome: "added" });
    const { entries, total } = await audit.list("g", { offset: 0, limit: 10, kind: "changes" });
    expect(total).toBe(5);
    expect(entries.map((e) => [e.address, e.outcome])).toEqual([[LAST, "added"], [FIRST, "added"]]);
  });
});
