import { describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { addByOperator, admit, removeFromGroup, serveAdmissions } from "../../lib/membership/membership.js";
import { ADMIT_DENIAL_REASONS } from "../../lib/membership/admit-batch.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { addMembers, removeMembers } from "../../lib/use-cases/operator.js";
import { MAX_GROUP_MEMBERS, XmtpUnavailableError } from "../../lib/xmtp/port.js";
import type { Address } from "../../lib/shared/address.js";
import { createTestApp, type TestApp } from "../support/test-app.js";

// Admissions sharing commits, on real Redis with the XMTP double (the real client: test/e2e/launch-day.test.ts).
let t: TestApp;
const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;

async function openGroup(): Promise<string> {
  t = createTestApp({ env: { LINK_SERVICE_URL: "", LINK_BASE_URL: "", WEBHOOK_RATE_LIMIT_PER_GROUP: "10000/60" } });
  const info = await t.app.xmtp.withSession(async (s) => {
    const g = await s.createGroup({ name: "Launch", description: "" });
    await s.publishGroup(g.groupId);
    return g;
  });
  await t.app.registry.insertPending({ groupId: info.groupId, name: "Launch", description: "", rules: { type: "open" } });
  await t.app.registry.activate(info.groupId, null);
  return info.groupId;
}
const people = (n: number) =>
  Array.from({ length: n }, () => {
    const w = wallet();
    t.network.register(w);
    return w;
  });

describe("admissions share commits", () => {
  it("40 people joining at once all get in, in a handful of commits, each recorded and audited once", async () => {
    const groupId = await openGroup();
    const crowd = people(40);
    const before = t.network.commits;
    const answers = await Promise.all(crowd.map((address) => decideJoin(t.app, { groupId, address }, "join-page")));
    expect(answers.every((a) => a.status === "SUCCESS")).toBe(true);
    expect(t.network.memberAddresses(groupId)).toEqual(expect.arrayContaining(crowd));
    expect(t.network.commits - before).toBeLessThanOrEqual(5);
    expect((await t.app.members.list(groupId)).map((m) => m.address).sort()).toEqual([...crowd].sort());
    const audit = await t.app.audit.list(groupId, { offset: 0, limit: 100, kind: "changes" });
    expect(audit.entries.filter((e) => e.outcome === "added").map((e) => e.address).sort()).toEqual([...crowd].sort());
  });

  it("when fewer places are left than people waiting, the first in line get in and the rest are told the group is full", async () => {
    const groupId = await openGroup();
    const fill = people(MAX_GROUP_MEMBERS - 4); // with the backend: 3 places left
    await addMembers(t.app, groupId, fill.slice(0, 50));
    for (let i = 50; i < fill.length; i += 50) await addMembers(t.app, groupId, fill.slice(i, i + 50));
    const late = people(8);
    for (const address of late) await t.app.admissions.enqueue(groupId, { address, inboxId: t.network.register(address), source: "webhook" });
    await t.app.xmtp.withSession((s) => serveAdmissions(t.app, s));
    const outcomes = await Promise.all(late.map((a) => t.app.admissions.outcome(groupId, a)));
    expect(outcomes).toEqual(["added", "added", "added", "full", "full", "full", "full", "full"]);
    expect(t.network.memberAddresses(groupId)).toHaveLength(MAX_GROUP_MEMBERS);
    expect(await decideJoin(t.app, { groupId, address: late[5]! }, "webhook")).toEqual({ status: "DENIED", reason: "This group is full" });
  });

  it("one admission XMTP will not take does not sink the batch: it is found and refused, the others get in", async () => {
    const groupId = await openGroup();
    const crowd = people(12);
    t.network.unaddable.add(t.network.register(crowd[7]!));
    const answers = await Promise.all(crowd.map((address) => decideJoin(t.app, { groupId, address }, "webhook")));
    expect(answers[7]).toEqual({ status: "DENIED", reason: expect.stringMatching(/XMTP would not add/) as unknown });
    expect(answers.filter((a) => a.status === "SUCCESS")).toHaveLength(11);
    expect(t.network.memberAddresses(groupId)).not.toContain(crowd[7]);
    // The refused inbox was forgotten: the next try looks it up afresh.
    expect(await t.app.inboxes.get(crowd[7]!)).toBeUndefined();
  });

  it("a commit whose intent ended in XMTP's Error state is a refusal: the batch is split, the others get in", async () => {
    const groupId = await openGroup();
    const crowd = people(6);
    t.network.refusal = "intent-error";
    t.network.unaddable.add(t.network.register(crowd[2]!));
    const answers = await Promise.all(crowd.map((address) => decideJoin(t.app, { groupId, address }, "webhook")));
    expect(answers[2]).toEqual({ status: "DENIED", reason: ADMIT_DENIAL_REASONS.refused });
    expect(answers.filter((a) => a.status === "SUCCESS")).toHaveLength(5);
    expect(t.network.memberAddresses(groupId)).not.toContain(crowd[2]);
  });

  it("a request that gave up waiting and an admission served anyway agree: the retry is SUCCESS, recorded once", async () => {
    const groupId = await openGroup();
    const [patient, impatient] = people(2);
    // The impatient request queues its admission and gives up at once (its own deadline)…
    await expect(admit(t.app, { groupId, address: impatient!, source: "webhook" }, { waitMs: -1 })).rejects.toBeInstanceOf(XmtpUnavailableError);
    expect(t.network.memberAddresses(groupId)).not.toContain(impatient);
    // …another request's session serves it with its own…
    expect(await decideJoin(t.app, { groupId, address: patient! }, "webhook")).toEqual({ status: "SUCCESS" });
    expect(t.network.memberAddresses(groupId)).toContain(impatient);
    // …and the person's retry is answered from it, with no second record.
    expect(await decideJoin(t.app, { groupId, address: impatient! }, "webhook")).toEqual({ status: "SUCCESS" });
    const audit = await t.app.audit.list(groupId, { offset: 0, limit: 10, kind: "changes" });
    expect(audit.entries.filter((e) => e.address === impatient)).toHaveLength(1);
  });

  it("someone removed right after joining is added again by their next join (not answered from the earlier one)", async () => {
    const groupId = await openGroup();
    const [person] = people(1);
    expect(await decideJoin(t.app, { groupId, address: person! }, "webhook")).toEqual({ status: "SUCCESS" });
    await removeMembers(t.app, groupId, [person!]);
    expect(t.network.memberAddresses(groupId)).not.toContain(person);
    expect(await decideJoin(t.app, { groupId, address: person! }, "webhook")).toEqual({ status: "SUCCESS" });
    expect(t.network.memberAddresses(groupId)).toContain(person);
  });

  it("an admission queued before the operator removed the person does not add them back", async () => {
    const groupId = await openGroup();
    const [member, queued] = people(2);
    expect(await decideJoin(t.app, { groupId, address: member! }, "webhook")).toEqual({ status: "SUCCESS" });
    // The person's request queued its admission and gave up waiting; it is still in line…
    await expect(admit(t.app, { groupId, address: queued!, source: "webhook" }, { waitMs: -1 })).rejects.toBeInstanceOf(XmtpUnavailableError);
    // …when the operator removes them both.
    await removeMembers(t.app, groupId, [member!, queued!]);
    await t.app.xmtp.withSession((s) => serveAdmissions(t.app, s));
    expect(t.network.memberAddresses(groupId)).not.toContain(queued);
    expect(t.network.memberAddresses(groupId)).not.toContain(member);
    expect(await t.app.members.list(groupId)).toEqual([]);
    // Its waiter is answered 503; asking again is a new join, decided afresh.
    expect(await t.app.admissions.outcome(groupId, queued!)).toBe("unavailable");
    expect(await decideJoin(t.app, { groupId, address: queued! }, "webhook")).toEqual({ status: "SUCCESS" });
  });

  it("XMTP down while serving: every waiting request answers 503, and nothing is left waiting for later", async () => {
    const groupId = await openGroup();
    const crowd = people(5);
    for (const address of crowd) await t.app.admissions.enqueue(groupId, { address, inboxId: t.network.register(address), source: "webhook" });
    // The network goes once the session has started.
    const serving = t.app.xmtp.withSession((s) => {
      t.network.down = true;
      return serveAdmissions(t.app, s);
    });
    await expect(serving).rejects.toBeInstanceOf(XmtpUnavailableError);
    t.network.down = false;
    expect(await Promise.all(crowd.map((a) => t.app.admissions.outcome(groupId, a)))).toEqual(crowd.map(() => "unavailable"));
    expect(await t.app.admissions.take(groupId, 10)).toEqual([]);
    expect(await decideJoin(t.app, { groupId, address: crowd[0]! }, "webhook")).toEqual({ status: "SUCCESS" });
  });

  it("a session past its time budget starts no new commit: the admissions wait for the next session", async () => {
    const groupId = await openGroup();
    const crowd = people(3);
    for (const address of crowd) await t.app.admissions.enqueue(groupId, { address, inboxId: t.network.register(address), source: "webhook" });
    const commits = t.network.commits;
    await t.app.xmtp.withSession((s) => serveAdmissions(t.app, { ...s, deadline: Date.now() - 1 }));
    expect(t.network.commits).toBe(commits);
    expect(await Promise.all(crowd.map((a) => t.app.admissions.outcome(groupId, a)))).toEqual([null, null, null]);
    await t.app.xmtp.withSession((s) => serveAdmissions(t.app, s));
    expect(await Promise.all(crowd.map((a) => t.app.admissions.outcome(groupId, a)))).toEqual(["added", "added", "added"]);
  });

  it("an operator's add of 50 is one commit", async () => {
    const groupId = await openGroup();
    const before = t.network.commits;
    const { results } = await addMembers(t.app, groupId, people(50));
    expect(results.every((r) => r.result === "added")).toBe(true);
    expect(t.network.commits - before).toBe(1);
  });

  it("a wallet with no inbox is told so without waiting for the lease, and its answer is remembered for a minute", async () => {
    const groupId = await openGroup();
    const stranger = wallet();
    const sessions = t.network.sessions;
    expect(await decideJoin(t.app, { groupId, address: stranger }, "webhook")).toMatchObject({ status: "DENIED", reason: expect.stringMatching(/no XMTP inbox/) as unknown });
    expect(t.network.sessions).toBe(sessions);
    expect(await t.app.inboxes.get(stranger)).toBeNull();
  });
});

describe("the membership service owns every change and its record", () => {
  it("whichever door: joins, operator adds and removals each leave the member record and one audit entry with the shared reason", async () => {
    const groupId = await openGroup();
    const [joiner, vouched, ghost] = [...people(2), wallet()];
    expect(await admit(t.app, { groupId, address: joiner, source: "webhook" })).toBe("added");
    expect(await admit(t.app, { groupId, address: ghost!, source: "join-page" })).toBe("not-on-xmtp");
    expect(await addByOperator(t.app, groupId, [vouched!, ghost!])).toEqual([
      { address: vouched, result: "added" },
      { address: ghost, result: "not-on-xmtp" },
    ]);
    expect(new Map((await t.app.members.list(groupId)).map((m) => [m.address, m.via]))).toEqual(new Map([[joiner, "webhook"], [vouched, "operator"]]));
    expect(await removeFromGroup(t.app, groupId, [joiner, ghost!], { source: "reverify", reason: "Hold at least 1 GATE on Base" })).toEqual([
      { address: joiner, result: "removed" },
      { address: ghost, result: "not-on-xmtp" },
    ]);
    expect(t.network.memberAddresses(groupId)).not.toContain(joiner);
    expect((await t.app.members.list(groupId)).map((m) => m.address)).toEqual([vouched]);
    // A retry of the join that ended "added" is asked again, not answered from before the removal.
    expect(await t.app.admissions.outcome(groupId, joiner)).toBeNull();
    const { entries } = await t.app.audit.list(groupId, { offset: 0, limit: 20 });
    // Entries written in the same millisecond have no order between them: compared as a set.
    const summary = entries.map((e) => [e.source, e.action, e.address, e.outcome, e.reason ?? null]);
    expect(summary).toHaveLength(6);
    expect(summary).toEqual(expect.arrayContaining([
      ["webhook", "join", joiner, "added", null],
      ["join-page", "join", ghost, "not-on-xmtp", ADMIT_DENIAL_REASONS["not-on-xmtp"]],
      ["operator", "add", vouched, "added", null],
      ["operator", "add", ghost, "not-on-xmtp", ADMIT_DENIAL_REASONS["not-on-xmtp"]],
      ["reverify", "remove", joiner, "removed", "Hold at least 1 GATE on Base"],
      ["reverify", "remove", ghost, "not-on-xmtp", "Hold at least 1 GATE on Base"],
    ]));
  });
});
