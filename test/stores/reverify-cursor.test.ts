import { describe, expect, it } from "vitest";
import { createReverifyCursorStore } from "../../lib/stores/reverify-cursor.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const prefix = () => `cur${Math.random().toString(36).slice(2)}`;

describe("re-verification cursor (real Redis)", () => {
  it("starts at the beginning, then reads back what was saved", async () => {
    const cursor = createReverifyCursorStore(redis, prefix());
    expect(await cursor.read()).toEqual({ group: 0, after: null });
    await cursor.save({ group: 3, after: `0x${"ab".repeat(20)}` });
    expect(await cursor.read()).toEqual({ group: 3, after: `0x${"ab".repeat(20)}` });
  });

  it("reads an older run's bare position, and starts over on anything it did not write", async () => {
    const p = prefix();
    const cursor = createReverifyCursorStore(redis, p);
    const key = `${p}:reverify:cursor`;
    await redis.set(key, "7");
    expect(await cursor.read()).toEqual({ group: 7, after: null });
    for (const junk of ["{nope", JSON.stringify({ group: -1, after: null }), JSON.stringify({ group: 2, after: "'; DROP" }), JSON.stringify({ group: 1.5, after: null }), "[]"]) {
      await redis.set(key, junk);
      expect(await cursor.read(), junk).toEqual({ group: 0, after: null });
    }
  });
});
