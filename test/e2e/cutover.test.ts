import { afterAll, beforeAll, describe, expect, it } from "vitest";
import createRoute from "../../api/create.js";
import { setApp } from "../../lib/app.js";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { addMembers, listMessages, removeMembers, sendMessage, showGroup } from "../../lib/use-cases/operator.js";
import { startLocalXmtpNode, type LocalXmtpNode } from "../../local/xmtp-node/xmtp-node.js";
import { adminPost } from "../support/requests.js";
import { realDeployment, startRealInstance, type Deployment, type RealXmtpInstance } from "../support/test-app.js";
import { createPerson, type Person, type PersonNetwork } from "../support/xmtp-people.js";

// XMTP's cutover, on a network of this file's own (retiring V3 on the shared node would stop every other test):
// an installation that ran on V3 keeps operating its groups on the decentralized network, with its members (real
// clients, who move too), a member's own commit after the cutover, and a cold start; and a deployment with no
// gateway answers 503 xmtp_v3_retired.
let node: LocalXmtpNode;
const instances: RealXmtpInstance[] = [];
const people: Person[] = [];
let v3: PersonNetwork;
let d14n: PersonNetwork;

const V3_WRITES = ["SendGroupMessages", "SendWelcomeMessages", "UploadKeyPackage", "RegisterInstallation", "PublishIdentityUpdate", "BatchPublishCommitLog"].map((m) =>
  m === "PublishIdentityUpdate" ? `/xmtp.identity.api.v1.IdentityApi/${m}` : `/xmtp.mls.api.v1.MlsApi/${m}`,
);
const v3WritesBy = (appVersion: string) => V3_WRITES.reduce((n, path) => n + (node.countsByApp.get(appVersion)?.get(path) ?? 0), 0);
const instance = async (deployment: Deployment) => {
  const i = await startRealInstance(deployment);
  instances.push(i);
  return i;
};
const person = async () => {
  const p = await createPerson(v3);
  people.push(p);
  return p;
};
const texts = async (p: Person, groupId: string) => ((await (await p.group(groupId))?.messages()) ?? []).map((m) => m.content).filter((c): c is string => typeof c === "string");
const commitsIn = (groupId: string) => node.state.groupStats(groupId).commits;

beforeAll(async () => {
  node = await startLocalXmtpNode({ port: 0, d14n: { gatewayPort: 0, nodePort: 0 } });
  v3 = { protocol: "v3", apiUrl: node.url };
  d14n = { protocol: "d14n", apiUrl: node.url, gatewayHost: node.gatewayUrl! };
}, 30_000);
afterAll(async () => {
  for (const i of instances) await i.close();
  for (const p of people) await p.close();
  await node.close();
});

describe("through XMTP's cutover (V3 retired, the decentralized network takes over)", () => {
  let deployment: Deployment;
  let a: RealXmtpInstance;
  let b: RealXmtpInstance;
  let groupId: string;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let dave: Person;
  let v3WritesAtSwitch = 0;

  it("runs on V3 before the cutover", async () => {
    deployment = realDeployment({ XMTP_API_URL: node.url, XMTP_GATEWAY_HOST: node.gatewayUrl! }, "v3");
    [a, b, alice, bob, carol, dave] = await Promise.all([instance(deployment), instance(deployment), person(), person(), person(), person()]);
    groupId = (await createGroup(a.app, { name: "Before and after", description: "", rules: { type: "open" } })).groupId;
    expect(await decideJoin(a.app, { groupId, address: alice.address }, "webhook")).toEqual({ status: "SUCCESS" });
    await sendMessage(b.app, groupId, "on V3");
    expect(await texts(alice, groupId)).toContain("on V3");
    expect(b.xmtp.protocol).toBe("v3");
    expect(await a.xmtp.network.read()).toBeNull();
    expect(a.xmtp.protocol).toBe("v3");
  });

  it("after the cutover, a join switches the installation to d14n and succeeds, and every instance follows", async () => {
    node.cutover = true;
    expect(await decideJoin(a.app, { groupId, address: bob.address }, "webhook")).toEqual({ status: "SUCCESS" });
    expect(await a.xmtp.network.read()).toBe("d14n");
    expect(a.xmtp.protocol).toBe("d14n");
    v3WritesAtSwitch = v3WritesBy(deployment.appVersion);
    // Members move to d14n with their apps; what they had on V3 stays theirs.
    for (const p of [alice, bob, carol, dave]) await p.reopen(d14n);
    expect(await bob.memberInboxIds(groupId)).toContain(bob.inboxId);
    expect(await texts(alice, groupId)).toContain("on V3");
  }, 60_000);

  it("keeps operating the group on d14n: send, a cold start on an empty disk, add and remove", async () => {
    // An instance that was running on V3 follows the switch at its next session.
    await sendMessage(b.app, groupId, "on d14n");
    expect(b.xmtp.protocol).toBe("d14n");
    expect(await texts(bob, groupId)).toContain("on d14n");
    const cold = await instance(deployment);
    expect((await addMembers(cold.app, groupId, [carol.address])).results).toEqual([{ address: carol.address, result: "added" }]);
    expect(cold.xmtp.protocol).toBe("d14n");
    expect((await removeMembers(cold.app, groupId, [alice.address])).results).toEqual([{ address: alice.address, result: "removed" }]);
    expect((await alice.group(groupId))?.isActive).toBe(false);
  }, 60_000);

  it("processes a member's own commit after the cutover, and its own next one, without forking", async () => {
    // Bob's second installation: his first one adds it to the group in a commit of its own when he next sends.
    const bobPhone = await createPerson(d14n, bob.key);
    people.push(bobPhone);
    const before = commitsIn(groupId);
    await (await bob.group(groupId))!.sendText("from bob, with a new device");
    expect(commitsIn(groupId)).toBeGreaterThan(before);
    const { messages } = await listMessages(a.app, groupId, { limit: 20 });
    expect(messages.find((m) => m.text === "from bob, with a new device")).toMatchObject({ sender: bob.address });
    expect((await addMembers(a.app, groupId, [dave.address])).results).toEqual([{ address: dave.address, result: "added" }]);
    await sendMessage(a.app, groupId, "after bob's commit");
    for (const p of [bob, carol, dave]) {
      expect(await texts(p, groupId)).toContain("after bob's commit");
      expect((await (await p.group(groupId))!.debugInfo()).maybeForked).toBe(false);
    }
    expect(await bobPhone.group(groupId)).not.toBeNull();
    const backend = (await showGroup(a.app, groupId)).members.map((m) => m.inboxId).sort();
    expect(await carol.memberInboxIds(groupId)).toEqual(backend);
    expect(await a.app.xmtp.withSession((s) => s.groupHealth(groupId))).toMatchObject({ maybeForked: false });
    // Since the switch the backend wrote nothing to V3.
    expect(v3WritesBy(deployment.appVersion)).toBe(v3WritesAtSwitch);
  }, 90_000);
});

describe("after the cutover, without a gateway", () => {
  it("answers 503 xmtp_v3_retired and stays on V3 until an operator sets XMTP_GATEWAY_HOST", async () => {
    const deployment = realDeployment({ XMTP_API_URL: node.url, XMTP_GATEWAY_HOST: "" }, "v3");
    const i = await instance(deployment);
    setApp(i.app);
    try {
      const res = await createRoute.fetch(adminPost("/api/create", { name: "Too late", description: "", rules: { type: "open" } }));
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("xmtp_v3_retired");
      expect(JSON.stringify(body)).not.toMatch(/Error|at .*\.ts/);
      expect(await i.xmtp.network.read()).toBeNull();
    } finally {
      setApp(undefined);
    }
  }, 90_000);
});
