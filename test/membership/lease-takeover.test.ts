import { afterAll, describe, expect, it } from "vitest";
import type { App } from "../../lib/app.js";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { realDeployment, startRealInstance, testRedis, type RealXmtpInstance } from "../support/test-app.js";
import { createPerson, type Person } from "../support/xmtp-people.js";

// A holder that loses its lease in the middle of serving admissions (paused past its TTL) while another instance
// takes over and serves the same admission must not overwrite what the new holder wrote. Real clients on the
// local node, two instances of one deployment sharing a real Redis.
const redis = testRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opened: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const x of opened) await x.close();
});

describe("a lease holder that lost its lease while serving admissions", () => {
  it("stops, and its late outcome, record and audit writes are refused: the new holder's 'added' stands", async () => {
    const deployment = realDeployment();
    const prefix = deployment.env.REDIS_KEY_PREFIX!;
    let takeover: (() => Promise<void>) | undefined;
    // A may be answered (from B's outcome) before B's own request returns: the checks wait for both.
    let takenOver: Promise<void> | undefined;
    const a: RealXmtpInstance = await startRealInstance(deployment, {}, {
      leaseTtlMs: 900,
      onStep: async (step, detail) => {
        // A's commit adding the person is held, about to be saved and sent: A is paused here past its lease.
        if (step !== "write-held" || !detail?.endsWith("SendGroupMessages") || !takeover) return;
        const run = takeover;
        takeover = undefined;
        takenOver = run();
        await takenOver;
      },
    });
    opened.push(a);
    const b = await startRealInstance(deployment);
    opened.push(b);
    const pat: Person = await createPerson();
    opened.push(pat);
    const { groupId } = await createGroup(a.app, { name: "Takeover", description: "", rules: { type: "open" } });

    // What A's (late) admission writes came to.
    const lateWrites: Promise<unknown>[] = [];
    const spied: App = {
      ...a.app,
      admissions: {
        ...a.app.admissions,
        complete: (...args) => {
          const written = a.app.admissions.complete(...args);
          lateWrites.push(written.then(() => "written", (e: unknown) => e));
          return written;
        },
      },
    };
    let bAnswer: unknown;
    takeover = async () => {
      // A's lease expires (it was not renewed while paused); B serves the same waiting admission.
      await redis.del(`${prefix}:xmtpdb:lease`);
      bAnswer = await decideJoin(b.app, { groupId, address: pat.address }, "webhook");
      // Long enough for A's next renewal to find its lease gone.
      await sleep(1000);
    };
    const aAnswer = await decideJoin(spied, { groupId, address: pat.address }, "webhook").catch((e: unknown) => e);
    await takenOver;
    expect(bAnswer).toEqual({ status: "SUCCESS" });
    // A's paused work carries on in the background once released: wait for its late outcome write.
    for (let waited = 0; lateWrites.length === 0 && waited < 30_000; waited += 200) await sleep(200);
    const late = await Promise.all(lateWrites);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((w) => w !== "written")).toBe(true);

    expect(await a.app.admissions.outcome(groupId, pat.address)).toBe("added");
    expect((await a.app.members.list(groupId)).map((m) => m.address)).toEqual([pat.address]);
    const entries = (await a.app.audit.list(groupId, { offset: 0, limit: 10 })).entries.filter((e) => e.address === pat.address);
    expect(entries.map((e) => e.outcome)).toEqual(["added"]);
    // The request A was serving is answered from the new holder's outcome.
    expect(aAnswer).toEqual({ status: "SUCCESS" });
    expect(await pat.memberInboxIds(groupId)).toContain(pat.inboxId);
  }, 90_000);
});
