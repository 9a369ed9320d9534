import { describe, expect, it } from "vitest";
import { CorruptStateError } from "../../lib/shared/errors.js";
import { createGroupRegistry } from "../../lib/stores/registry.js";
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
