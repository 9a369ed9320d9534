import { describe, expect, it } from "vitest";
import { CorruptStateError } from "../../lib/shared/errors.js";
import { createGroupRegistry } from "../../lib/stores/registry.js";
import { createAuditLog, AUDIT_LOG_CAP } from "../../lib/stores/audit-log.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const prefix = () => `reg${Math.random().toString(36).slice(2)}`;

describe("group registry", () => {
  it("records a group pending its link, then activates it", async () => {
    const registry = createGroupRegistry(redis, prefix());
    const pending = await registry.insertPending({ groupId: "ab12", name: "n", description: "d", rules: { type: "open" } });
    expect(pending.state).toBe("pending-link");
    expect(await registry.get("ab12")).toMatchObject({ state: "pending-link", linkId: null });
    await registry.activate("ab12", "L1");
    expect(await registry.get("ab12")).toMatchObject({ state: "active", linkId: "L1", rules: { type: "open" } });
    expect(await registry.list({ offset: 0, limit: 10 })).toEqual({ groupIds: ["ab12"], total: 1 });
  });

  it("answers null for a group it did not create", async () => {
    expect(await createGroupRegistry(redis, prefix()).get("ffff")).toBeNull();
  });

  it("refuses a record of the wrong shape instead of trusting it", async () => {
    const p = prefix();
    await redis.set(`${p}:group:abcd`, JSON.stringify({ groupId: "abcd", rules: { type: "nope" } }));
    await expect(createGroupRegistry(redis, p).get("abcd")).rejects.toBeInstanceOf(CorruptStateError);
  });

  it("claims an idempotency key once, then reports in-progress, mismatch and the created group", async () => {
    const registry = createGroupRegistry(redis, prefix());
    expect(await registry.claimIdempotencyKey("key-12345678", "fp1")).toEqual({ kind: "new" });
    expect(await registry.claimIdempotencyKey("key-12345678", "fp1")).toEqual({ kind: "in-progress" });
    expect(await registry.claimIdempotencyKey("key-12345678", "fp2")).toEqual({ kind: "mismatch" });
    await registry.insertPending({ groupId: "cd34", name: "n", description: "", rules: { type: "open" } }, { key: "key-12345678", fingerprint: "fp1" });
    expect(await registry.claimIdempotencyKey("key-12345678", "fp1")).toEqual({ kind: "created", groupId: "cd34" });
  });

  it("releases a key whose attempt failed, but never one bound to a group", async () => {
    const registry = createGroupRegistry(redis, prefix());
    await registry.claimIdempotencyKey("key-abcdefgh", "fp");
    await registry.releaseIdempotencyKey("key-abcdefgh", "fp");
    expect(await registry.claimIdempotencyKey("key-abcdefgh", "fp")).toEqual({ kind: "new" });
    await registry.insertPending({ groupId: "ef56", name: "n", description: "", rules: { type: "open" } }, { key: "key-abcdefgh", fingerprint: "fp" });
    await registry.releaseIdempotencyKey("key-abcdefgh", "fp");
    expect(await registry.claimIdempotencyKey("key-abcdefgh", "fp")).toEqual({ kind: "created", groupId: "ef56" });
  });
});

describe("audit log", () => {
  it("keeps changes and denials newest first, each capped, so a flood of denials cannot push changes out", async () => {
    const p = prefix();
    let t = 0;
    const audit = createAuditLog(redis, p, () => new Date(1_700_000_000_000 + t++ * 1000));
    await audit.append("g", { source: "webhook", action: "join", address: "0xfirst", outcome: "added" });
    // A flood of wallets the rules turn away (seeded in one pipeline; the next append trims).
    const pipe = redis.pipeline();
    for (let i = 0; i < AUDIT_LOG_CAP + 4; i++) {
      pipe.lpush(`${p}:audit:denials:g`, JSON.stringify({ at: new Date(1_700_000_100_000 + i).toISOString(), source: "join-page", action: "join", address: `0x${i}`, outcome: "denied", reason: "no" }));
    }
    await pipe.exec();
    t = 200;
    await audit.append("g", { source: "join-page", action: "join", address: "0xlast-denied", outcome: "denied", reason: "no" });
    await audit.append("g", { source: "operator", action: "add", address: "0xlast", outcome: "added" });

    const changes = await audit.list("g", { offset: 0, limit: 10, kind: "changes" });
    expect(changes.entries.map((e) => e.address)).toEqual(["0xlast", "0xfirst"]);
    const denials = await audit.list("g", { offset: 0, limit: 2, kind: "denials" });
    expect(denials.total).toBe(AUDIT_LOG_CAP);
    expect(denials.entries[0]).toMatchObject({ address: "0xlast-denied", outcome: "denied" });
    // Both, merged newest first.
    const all = await audit.list("g", { offset: 0, limit: 3 });
    expect(all.total).toBe(AUDIT_LOG_CAP + 2);
    expect(all.entries.map((e) => e.address)).toEqual(["0xlast", "0xlast-denied", `0x${AUDIT_LOG_CAP + 3}`]);
  });
});
