import { describe, expect, it } from "vitest";
import { testRedis } from "../support/test-app.js";

// The bridge is test infrastructure; these checks keep it honest about the protocol the client speaks.
describe("Upstash REST bridge over redis-server", () => {
  const redis = testRedis();
  const key = `bridge:${Math.random()}`;

  it("round-trips strings (base64 response encoding) including non-ASCII", async () => {
    await redis.set(key, "héllo ✓");
    expect(await redis.get(key)).toBe("héllo ✓");
  });

  it("runs pipelines and transactions with per-command results", async () => {
    const tx = redis.multi();
    tx.incr(`${key}:n`);
    tx.incr(`${key}:n`);
    expect(await tx.exec()).toEqual([1, 2]);
    const p = redis.pipeline();
    p.get(`${key}:n`);
    p.del(`${key}:n`);
    expect(await p.exec()).toEqual(["2", 1]);
  });

  it("answers HGETALL as Upstash does (a flat field/value array)", async () => {
    await redis.hset(`${key}:h`, { a: "1", b: "two" });
    const raw: unknown = await redis.hgetall(`${key}:h`);
    expect(raw).toEqual(["a", "1", "b", "two"]);
  });

  it("surfaces command errors as client errors", async () => {
    await redis.set(`${key}:s`, "x");
    await expect(redis.incr(`${key}:s`)).rejects.toThrow(/not an integer/);
  });

  it("rejects a wrong token", async () => {
    const { createRedis } = await import("../../lib/shared/redis.js");
    const bad = createRedis({ url: (redis as unknown as { client: { baseUrl: string } }).client.baseUrl, token: "wrong" });
    await expect(bad.get("k")).rejects.toThrow(/Unauthorized/);
  });
});
