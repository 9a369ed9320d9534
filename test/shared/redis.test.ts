import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { errorResponse } from "../../lib/http/responses.js";
import { StoreUnavailableError } from "../../lib/shared/errors.js";
import { silentLogger } from "../../lib/shared/log.js";
import { createRedis, storeCall } from "../../lib/shared/redis.js";
import { freePort } from "../../local/redis/redis-server.js";
import { testRedis } from "../support/test-app.js";

describe("storeCall", () => {
  it("passes a bug (a TypeError of our own) through as a 500, not as Redis being down", async () => {
    const redis = testRedis();
    // A value that is not there, read as if it were: the kind of slip storeCall must not hide behind a 503.
    const bug = await storeCall("read", async () => (await redis.get<string>(`missing:${randomBytes(6).toString("hex")}`))!.length).catch((e: unknown) => e);
    expect(bug).toBeInstanceOf(TypeError);
    expect(bug).not.toBeInstanceOf(StoreUnavailableError);
    expect(errorResponse(bug, "default", silentLogger).status).toBe(500);
  });

  it("still takes a fetch failure (a TypeError with the network error as its cause) as Redis unavailable (503)", async () => {
    const unreachable = createRedis({ url: `http://127.0.0.1:${await freePort()}`, token: "t" });
    const down = await storeCall("read", () => unreachable.get("k")).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(StoreUnavailableError);
    expect((down as Error).cause).toBeInstanceOf(TypeError);
    expect(errorResponse(down, "default", silentLogger).status).toBe(503);
  });
});
