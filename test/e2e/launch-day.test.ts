import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { addMembers } from "../../lib/use-cases/operator.js";
import { realDeployment, startRealInstance, type Deployment, type RealXmtpInstance } from "../support/test-app.js";
import { createPerson, nodeGroupStats, type Person } from "../support/xmtp-people.js";

// A crowd joining at once, with the real client on the local node, over two instances of one deployment:
// admissions are queued in Redis and served in shared commits by whichever instance holds the lease.
let deployment: Deployment;
const instances: RealXmtpInstance[] = [];
const crowd: Person[] = [];

beforeAll(async () => {
  deployment = realDeployment({ WEBHOOK_RATE_LIMIT_PER_GROUP: "10000/60" });
  instances.push(...(await Promise.all([startRealInstance(deployment), startRealInstance(deployment)])));
  crowd.push(...(await Promise.all(Array.from({ length: 24 }, () => createPerson()))));
}, 120_000);
afterAll(async () => {
  for (const i of instances) await i.close();
  for (const p of crowd) await p.close();
});

describe("launch-day joins with the real client", () => {
  it("24 people joining at once over two instances all get in, in a few commits, and every member sees the same group", async () => {
    const [a, b] = instances as [RealXmtpInstance, RealXmtpInstance];
    const { groupId } = await createGroup(a.app, { name: "Launch", description: "", rules: { type: "open" } });
    const before = (await nodeGroupStats(groupId)).commits;
    const answers = await Promise.all(crowd.map((p, i) => decideJoin((i % 2 ? a : b).app, { groupId, address: p.address }, "webhook")));
    expect(answers.every((x) => x.status === "SUCCESS")).toBe(true);
    const commits = (await nodeGroupStats(groupId)).commits - before;
    expect(commits).toBeGreaterThan(0);
    expect(commits).toBeLessThanOrEqual(6);
    const backend = await a.app.xmtp.withSession(async (s) => (await s.listMembers(groupId)).map((m) => m.inboxId).sort());
    expect(backend).toHaveLength(25);
    for (const p of [crowd[0]!, crowd[11]!, crowd[23]!]) expect(await p.memberInboxIds(groupId)).toEqual(backend);
    const seen = await Promise.all(crowd.map(async (p) => (await p.group(groupId)) !== null));
    expect(seen.every(Boolean)).toBe(true);
  }, 120_000);

  it("one admission XMTP will not take (an inbox that does not exist) is found and refused; the rest of the batch gets in", async () => {
    const [a] = instances as [RealXmtpInstance];
    const { groupId } = await createGroup(a.app, { name: "One bad", description: "", rules: { type: "open" } });
    const [good1, bad, good2] = [crowd[0]!, crowd[1]!, crowd[2]!];
    // The cache remembers a wrong inbox for one address (as if its owner had moved it since).
    await a.app.inboxes.set(bad.address, randomBytes(32).toString("hex"));
    const answers = await Promise.all([good1, bad, good2].map((p) => decideJoin(a.app, { groupId, address: p.address }, "join-page")));
    expect(answers[0]).toEqual({ status: "SUCCESS" });
    expect(answers[2]).toEqual({ status: "SUCCESS" });
    expect(answers[1]).toMatchObject({ status: "DENIED" });
    // Forgotten, the real inbox is looked up on the retry, and the person gets in.
    expect(await decideJoin(a.app, { groupId, address: bad.address }, "join-page")).toEqual({ status: "SUCCESS" });
    expect(await good1.memberInboxIds(groupId)).toContain(bad.inboxId);
  }, 120_000);

  it("an operator's add of 20 is one commit", async () => {
    const [a] = instances as [RealXmtpInstance];
    const { groupId } = await createGroup(a.app, { name: "Operator", description: "", rules: { type: "open" } });
    const before = (await nodeGroupStats(groupId)).commits;
    const { results } = await addMembers(a.app, groupId, crowd.slice(0, 20).map((p) => p.address));
    expect(results.every((r) => r.result === "added")).toBe(true);
    expect((await nodeGroupStats(groupId)).commits - before).toBe(1);
  }, 60_000);
});
