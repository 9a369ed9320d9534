import { describe, expect, it } from "vitest";
import { createChallengeStore, hashMessage } from "../../lib/stores/challenges.js";
import { testRedis } from "../support/test-app.js";

const redis = testRedis();
const prefix = () => `ch${Math.random().toString(36).slice(2)}`;
const challenge = { linkId: "l".repeat(22), groupId: "ab", address: `0x${"12".repeat(20)}` as const, chainId: 1, messageHash: hashMessage("m"), expiresAt: new Date(Date.now() + 60_000).toISOString() };

describe("sign-in challenge store (real Redis)", () => {
  it("issues, then exactly one of two racing consumers uses the nonce; a replay reads as used", async () => {
    const store = createChallengeStore(redis, prefix());
    const nonce = store.newNonce();
    expect(nonce).toMatch(/^[0-9a-f]{32}$/);
    await store.save(nonce, challenge);
    expect(await store.peek(nonce)).toEqual({ state: "issued", challenge });
    const results = await Promise.all([store.consume(nonce), store.consume(nonce)]);
    expect(results.sort()).toEqual(["ok", "used"]);
    expect(await store.peek(nonce)).toEqual({ state: "used" });
    expect(await store.peek(store.newNonce())).toEqual({ state: "unknown" });
  });

  it("treats a stored challenge it did not write (not JSON, another shape, an address not as stored) as unknown", async () => {
    const p = prefix();
    const store = createChallengeStore(redis, p);
    for (const junk of ["{x", JSON.stringify({ ...challenge, address: "0xABCDEF" }), JSON.stringify({ ...challenge, chainId: "1" })]) {
      const nonce = store.newNonce();
      await redis.set(`${p}:siwe:nonce:${nonce}`, junk);
      expect(await store.peek(nonce), junk).toEqual({ state: "unknown" });
    }
  });
});
