import { describe, expect, it } from "vitest";
import { createNetworkChoice } from "../../../lib/xmtp/state/network-choice.js";
import { testRedis } from "../../support/test-app.js";
import { randomBytes } from "node:crypto";

describe("the recorded XMTP network (real Redis)", () => {
  const redis = testRedis();
  it("is unset at first, then what was recorded, with when and why", async () => {
    const prefix = `nc${randomBytes(4).toString("hex")}`;
    const choice = createNetworkChoice(redis, prefix, () => new Date("2026-11-30T10:00:00Z"));
    expect(await choice.read()).toBeNull();
    await choice.write("d14n", "V3 answered a write with its retirement message");
    expect(await choice.read()).toBe("d14n");
    expect(await choice.history()).toEqual({ protocol: "d14n", reason: "V3 answered a write with its retirement message", at: "2026-11-30T10:00:00.000Z" });
    // Another instance (another client of the same store) reads the same.
    expect(await createNetworkChoice(testRedis(), prefix).read()).toBe("d14n");
  });

  it("reads a value it did not write as no choice at all (the configured start applies)", async () => {
    const prefix = `nc${randomBytes(4).toString("hex")}`;
    await redis.set(`${prefix}:xmtp:network`, "v4");
    await redis.set(`${prefix}:xmtp:network:switched`, "{not json");
    const choice = createNetworkChoice(redis, prefix);
    expect(await choice.read()).toBeNull();
    expect(await choice.history()).toBeNull();
  });
});
