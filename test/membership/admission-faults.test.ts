import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { reverifyMembers } from "../../lib/use-cases/reverify.js";
import { admit, serveAdmissions } from "../../lib/membership/membership.js";
import { errorResponse } from "../../lib/http/responses.js";
import { silentLogger } from "../../lib/shared/log.js";
import { XmtpOperationError, XmtpUnavailableError } from "../../lib/xmtp/port.js";
import { realDeployment, startRealInstance, type Deployment, type RealXmtpInstance } from "../support/test-app.js";
import { clearFaults, createPerson, injectFaults, walletWithoutInbox, type Person } from "../support/xmtp-people.js";

// Admissions when XMTP fails partway, with the real client against the local node and real Redis.
const opened: { close(): Promise<void> }[] = [];
const track = <T extends { close(): Promise<void> }>(x: T): T => (opened.push(x), x);
afterAll(async () => {
  for (const x of opened) await x.close();
});
const people = (n: number): Promise<Person[]> => Promise.all(Array.from({ length: n }, async () => track(await createPerson())));

/**
 * An instance whose node fails every commit after the first `landed` ones once `armed()` is called: the relay
 * sees each write before it leaves, and the node's fault is armed just before the one that must fail.
 */
async function instanceFailingCommitsAfter(deployment: Deployment, landed: number): Promise<{ instance: RealXmtpInstance; arm: () => void }> {
  let armed = false;
  let sent = 0;
  const instance = track(
    await startRealInstance(deployment, {}, {
      onStep: async (step, path) => {
        if (!armed || step !== "write-held" || !path?.includes("SendGroupMessages")) return;
        if (++sent === landed + 1) await injectFaults(deployment.appVersion, [{ method: "SendGroupMessages", commitsOnly: true, when: "before", count: 50 }]);
      },
    }),
  );
  return { instance, arm: () => void (armed = true) };
}

describe("a batch whose later commit fails", () => {
  it("records the people of the commits that landed as they land: member record, audit entry, outcome 'added'", async () => {
    const deployment = realDeployment();
    const { instance, arm } = await instanceFailingCommitsAfter(deployment, 1);
    const { app } = instance;
    const [ann, ben, cy] = await people(3);
    const { groupId } = await createGroup(app, { name: "Partial", description: "", rules: { type: "open" } });
    // A stale inbox XMTP will not add splits the batch: [ann, ben] lands in one commit, [cy] in the next, which fails.
    const stale = walletWithoutInbox();
    for (const [address, inboxId] of [[ann!.address, ann!.inboxId], [ben!.address, ben!.inboxId], [stale, randomBytes(32).toString("hex")], [cy!.address, cy!.inboxId]] as const) {
      await app.admissions.enqueue(groupId, { address, inboxId, source: "webhook" });
    }
    arm();
    const error = await app.xmtp.withSession((s) => serveAdmissions(app, s)).catch((e: unknown) => e);
    await clearFaults(deployment.appVersion);
    expect(error).toBeInstanceOf(XmtpUnavailableError);
    // Ann and Ben are in the group (their own clients see it)…
    expect(await ann!.group(groupId)).not.toBeNull();
    expect(await ben!.group(groupId)).not.toBeNull();
    expect(await cy!.group(groupId)).toBeNull();
    // …and recorded as such, though the batch failed after them.
    expect((await app.members.list(groupId)).map((m) => [m.address, m.via]).sort()).toEqual([[ann!.address, "webhook"], [ben!.address, "webhook"]].sort());
    const { entries } = await app.audit.list(groupId, { offset: 0, limit: 20, kind: "changes" });
    expect(entries.filter((e) => e.outcome === "added").map((e) => e.address).sort()).toEqual([ann!.address, ben!.address].sort());
    expect(await Promise.all([ann!, ben!, cy!].map((p) => app.admissions.outcome(groupId, p.address)))).toEqual(["added", "added", "unavailable"]);
    expect(await app.admissions.outcome(groupId, stale)).toBe("refused");
    // Cy's retry gets in.
    expect(await decideJoin(app, { groupId, address: cy!.address }, "webhook")).toEqual({ status: "SUCCESS" });
  }, 90_000);
});

describe("the cron reconciles XMTP's member list with the records", () => {
  it("records whoever is in the group without a record, and checks them like anyone else", async () => {
    // Removal at once (no grace period), the subject here being the reconciliation; warnings: reverify-grace.test.ts.
    const deployment = realDeployment({ REVERIFY_GRACE_HOURS: "0" });
    const { app } = track(await startRealInstance(deployment));
    const [listed, ghost] = await people(2);
    const { groupId } = await createGroup(app, { name: "Listed", description: "", rules: { type: "allowlist", addresses: [listed!.address] } });
    expect(await decideJoin(app, { groupId, address: listed!.address }, "webhook")).toEqual({ status: "SUCCESS" });
    // A commit that landed with nothing recorded after it (its batch failed, or the process died in between).
    await app.xmtp.withSession((s) => s.addMembers(groupId, [ghost!.inboxId]));
    expect(await ghost!.group(groupId)).not.toBeNull();
    expect((await app.members.list(groupId)).map((m) => m.address)).toEqual([listed!.address]);

    const dry = await reverifyMembers(app, { dryRun: true });
    expect(dry.reconciled).toEqual([{ groupId, address: ghost!.address }]);
    expect(dry.removed).toEqual([{ groupId, address: ghost!.address, reason: expect.any(String) as unknown }]);
    expect((await app.members.list(groupId)).map((m) => m.address)).toEqual([listed!.address]);

    const report = await reverifyMembers(app, { dryRun: false });
    expect(report.reconciled).toEqual([{ groupId, address: ghost!.address }]);
    expect(report.membersChecked).toBe(2);
    expect(report.removed).toEqual([{ groupId, address: ghost!.address, reason: expect.any(String) as unknown }]);
    expect((await ghost!.group(groupId))?.isActive).toBe(false);
    expect((await app.members.list(groupId)).map((m) => m.address)).toEqual([listed!.address]);
    const { entries } = await app.audit.list(groupId, { offset: 0, limit: 20 });
    expect(entries.filter((e) => e.address === ghost!.address).map((e) => [e.source, e.action, e.outcome]).sort()).toEqual(
      [["reverify", "join", "already-member"], ["reverify", "remove", "removed"]].sort(),
    );
    // Once recorded, nothing more is found.
    expect((await reverifyMembers(app, { dryRun: true })).reconciled).toEqual([]);
  }, 90_000);
});

describe("XMTP refusing one group while admissions are served", () => {
  it("ends that group's admissions 503, serves the later groups, and answers the holder 503, not 500", async () => {
    const deployment = realDeployment();
    const { app } = track(await startRealInstance(deployment));
    const [dee, eve] = await people(2);
    const { groupId } = await createGroup(app, { name: "Served", description: "", rules: { type: "open" } });
    // A group id libxmtp cannot even look up: its listMembers is refused (XmtpOperationError), not a network failure.
    const broken = "not-a-group-id";
    await app.admissions.enqueue(broken, { address: eve!.address, inboxId: eve!.inboxId, source: "webhook" });
    expect(await app.xmtp.withSession((s) => s.listMembers(broken)).catch((e: unknown) => (e as Error).name)).toBe("XmtpOperationError");
    const answer = await decideJoin(app, { groupId, address: dee!.address }, "webhook").catch((e: unknown) => e);
    expect(answer).toEqual({ status: "SUCCESS" });
    expect(await dee!.group(groupId)).not.toBeNull();
    expect(await app.admissions.outcome(broken, eve!.address)).toBe("unavailable");

    // The same refusal met by a waiting request of that group: 503, never 500.
    const refused = await admit(app, { groupId: broken, address: dee!.address, source: "webhook" }).catch((e: unknown) => e);
    expect(errorResponse(refused, "link-service", silentLogger).status).toBe(503);
  }, 90_000);

  it("a client XMTP will not start (an XmtpOperationError, not the network) answers the waiting request 503, not 500", async () => {
    const deployment = realDeployment();
    const first = track(await startRealInstance(deployment));
    const { groupId } = await createGroup(first.app, { name: "Rekeyed", description: "", rules: { type: "open" } });
    const [fay] = await people(1);
    // An instance whose database key differs from the one the saved database was written with: libxmtp cannot open it.
    const rekeyed = track(await startRealInstance({ ...deployment, env: { ...deployment.env, XMTP_DB_ENCRYPTION_KEY: "22".repeat(32) } }));
    const started = await rekeyed.app.xmtp.withSession(async () => "started").catch((e: unknown) => e);
    expect(started).toBeInstanceOf(XmtpOperationError);
    const error = await decideJoin(rekeyed.app, { groupId, address: fay!.address }, "webhook").catch((e: unknown) => e);
    expect(errorResponse(error, "link-service", silentLogger).status).toBe(503);
    expect((error as Error).cause).toBeInstanceOf(XmtpOperationError);
  }, 90_000);
});
