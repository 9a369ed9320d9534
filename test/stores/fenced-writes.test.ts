import { describe, expect, it } from "vitest";
import { createAdmissionQueue } from "../../lib/stores/admission-queue.js";
import { createAuditLog } from "../../lib/stores/audit-log.js";
import { createMemberStore } from "../../lib/stores/members.js";
import { DependencyUnavailableError } from "../../lib/shared/errors.js";
import { testRedis } from "../support/test-app.js";

// A lease holder's writes of member records, admission outcomes and audit entries carry its fencing number: once a
// newer holder exists, the same Lua step that would write refuses, and nothing is written.
const redis = testRedis();
const prefix = () => `fen${Math.random().toString(36).slice(2)}`;
const addr = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as const;

describe("fenced membership writes (real Redis)", () => {
  it("writes under the newest fence, and refuses under an older one", async () => {
    const p = prefix();
    const fenceKey = `${p}:xmtpdb:fence`;
    await redis.set(fenceKey, "7");
    const members = createMemberStore(redis, p);
    const audit = createAuditLog(redis, p);
    const admissions = createAdmissionQueue(redis, p);
    await admissions.enqueue("g", { address: addr(1), inboxId: "i1", source: "webhook" });
    await admissions.enqueue("g", { address: addr(2), inboxId: "i2", source: "webhook" });

    const current = { key: fenceKey, value: 7 };
    await members.recordMany("g", [{ address: addr(1), via: "webhook", mode: "replace" }], current);
    await audit.appendMany("g", [{ source: "webhook", action: "join", address: addr(1), outcome: "added" }], current);
    await admissions.complete("g", [{ address: addr(1), outcome: "added" }], current);
    expect((await members.list("g")).map((m) => m.address)).toEqual([addr(1)]);
    expect((await audit.list("g", { offset: 0, limit: 10 })).total).toBe(1);
    expect(await admissions.outcome("g", addr(1))).toBe("added");

    // A newer holder took the lease.
    await redis.incr(fenceKey);
    const stale = { key: fenceKey, value: 7 };
    const refused = await Promise.all([
      members.recordMany("g", [{ address: addr(2), via: "webhook", mode: "replace" }, { address: addr(1), via: "operator", mode: "exempt" }], stale).catch((e: unknown) => e),
      audit.appendMany("g", [{ source: "webhook", action: "join", address: addr(1), outcome: "already-member" }], stale).catch((e: unknown) => e),
      admissions.complete("g", [{ address: addr(1), outcome: "unavailable" }, { address: addr(2), outcome: "unavailable" }], stale).catch((e: unknown) => e),
    ]);
    for (const error of refused) expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(await members.list("g")).toMatchObject([{ address: addr(1), via: "webhook" }]);
    expect((await audit.list("g", { offset: 0, limit: 10 })).total).toBe(1);
    expect(await admissions.outcome("g", addr(1))).toBe("added");
    expect(await admissions.outcome("g", addr(2))).toBeNull();
    expect((await admissions.take("g", 10)).map((a) => a.address)).toEqual([addr(2)]);
  });
});
