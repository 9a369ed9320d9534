import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Group } from "@xmtp/node-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { webhookToken } from "../../lib/services/webhook-token.js";
import { handleWebhookJoin } from "../../lib/use-cases/webhook-join.js";
import { issueChallenge, joinWithSignature } from "../../lib/use-cases/sign-in-join.js";
import { addMembers, listMessages, removeMembers, sendMessage, showGroup } from "../../lib/use-cases/operator.js";
import { DATABASE_FILE_SUFFIXES } from "../../lib/xmtp/state/local-files.js";
import { createWalletSigner } from "../../lib/xmtp/signer.js";
import { startDevLinkService } from "../../local/link-service/dev-link-service.js";
import { PROTOCOLS, realDeployment, startRealInstance, WEBHOOK_SECRET, type Deployment, type RealXmtpInstance } from "../support/test-app.js";
import { createPerson, nodeCallsOf, personClientOptions, type Person } from "../support/xmtp-people.js";

// The whole path with the real @xmtp/node-sdk client against the local XMTP node: three instances of one
// deployment (separate disks, one Redis), and people who are real clients with wallets of their own.
// The link service is the local stand-in over real HTTP (msw intercepts every socket, HTTP/2 ones included).
for (const protocol of PROTOCOLS) {
describe(`on ${protocol === "v3" ? "XMTP V3" : "the decentralized network (d14n)"}`, () => {
let links: Awaited<ReturnType<typeof startDevLinkService>>;
let deployment: Deployment;
const instances: RealXmtpInstance[] = [];
const people: Person[] = [];
let a: RealXmtpInstance;
let b: RealXmtpInstance;
let groupId: string;
let joinLinkId: string;
let serviceLinkId: string;
let alice: Person;
let bob: Person;
let carol: Person;

const person = async () => {
  const p = await createPerson({ protocol });
  people.push(p);
  return p;
};
const instance = async () => {
  const i = await startRealInstance(deployment);
  instances.push(i);
  return i;
};
const texts = async (p: Person) => ((await (await p.group(groupId))?.messages()) ?? []).map((m) => m.content).filter((c): c is string => typeof c === "string");

beforeAll(async () => {
  links = await startDevLinkService();
  deployment = realDeployment({ LINK_SERVICE_URL: `${links.url}/api/groups/create`, LINK_BASE_URL: `${links.url}/group/` }, protocol);
  [a, b, alice, bob, carol] = await Promise.all([instance(), instance(), person(), person(), person()]);
}, 60_000);
afterAll(async () => {
  for (const i of instances) await i.close();
  for (const p of people) await p.close();
  await links.close();
});

describe("the real XMTP client end to end (local node, two instances, one Redis)", () => {
  it("creates a group on one instance; a webhook join through the other adds the person, whose own client sees it by name", async () => {
    const created = await createGroup(a.app, { name: "Launch crew", description: "Early holders", rules: { type: "open" } });
    groupId = created.groupId;
    joinLinkId = created.joinLinkId;
    serviceLinkId = created.groupLinkId!;
    const token = webhookToken(WEBHOOK_SECRET, groupId);
    expect(await handleWebhookJoin(b.app, { groupLinkId: serviceLinkId, topic: groupId, walletAddress: alice.address }, token)).toEqual({ status: "SUCCESS" });
    const seen = await alice.group(groupId);
    expect(seen).toBeInstanceOf(Group);
    expect(seen!.name).toBe("Launch crew");
    expect(seen!.description).toBe("Early holders");
    // A retry of the same webhook call answers SUCCESS without another commit.
    const epoch = (await a.app.xmtp.withSession((s) => s.groupHealth(groupId))).epoch;
    expect(await handleWebhookJoin(a.app, { groupLinkId: serviceLinkId, topic: groupId, walletAddress: alice.address }, token)).toEqual({ status: "SUCCESS" });
    expect((await a.app.xmtp.withSession((s) => s.groupHealth(groupId))).epoch).toBe(epoch);
  });

  it("adds a person who signs in on the group's own page", async () => {
    const { message } = await issueChallenge(a.app, { linkId: joinLinkId, address: bob.address, chainId: 1 }, "203.0.113.7");
    const signature = await createWalletSigner(bob.key).signer.signMessage(message);
    const result = await joinWithSignature(a.app, { message, signature: `0x${Buffer.from(signature).toString("hex")}` }, "203.0.113.7");
    expect(result).toMatchObject({ status: "SUCCESS", groupId });
    expect(await bob.group(groupId)).not.toBeNull();
  });

  it("delivers the operator's message to every member", async () => {
    await sendMessage(b.app, groupId, "Welcome aboard");
    expect(await texts(alice)).toContain("Welcome aboard");
    expect(await texts(bob)).toContain("Welcome aboard");
  });

  it("lists a member's message with the member's address", async () => {
    await (await bob.group(groupId))!.sendText("gm from bob");
    const { messages } = await listMessages(a.app, groupId, { limit: 20 });
    expect(messages.find((m) => m.text === "gm from bob")).toMatchObject({ sender: bob.address, senderInboxId: bob.inboxId, kind: "application" });
    expect(messages.find((m) => m.text === "Welcome aboard")).toMatchObject({ sender: deployment.backendAddress });
    // Member changes are listed too, without text.
    expect(messages.some((m) => m.kind === "membership-change" && m.text === null)).toBe(true);
  });

  it("starts cold on an empty disk from the stored state and adds a member", async () => {
    const cold = await instance();
    const { results } = await addMembers(cold.app, groupId, [carol.address]);
    expect(results).toEqual([{ address: carol.address, result: "added" }]);
    expect(cold.xmtp.durable.localVersion).toBeGreaterThan(0);
    expect(await carol.group(groupId)).not.toBeNull();
  });

  it("keeps working while instances take turns", async () => {
    for (let round = 0; round < 4; round++) {
      await sendMessage(instances[round % instances.length]!.app, groupId, `round ${round}`);
    }
    for (const p of [alice, bob, carol]) {
      const own = await texts(p);
      expect(own.filter((t) => t.startsWith("round "))).toEqual(["round 0", "round 1", "round 2", "round 3"]);
    }
  });

  it("removes a member: their own client sees the group as inactive", async () => {
    const { results } = await removeMembers(b.app, groupId, [alice.address]);
    expect(results).toEqual([{ address: alice.address, result: "removed" }]);
    const seen = await alice.group(groupId);
    expect(seen?.isActive).toBe(false);
  });

  it("ends with every member's view equal to the backend's, nobody forked, and one backend installation", async () => {
    const shown = await showGroup(a.app, groupId);
    const backendView = shown.members.map((m) => m.inboxId).sort();
    expect(backendView).toHaveLength(3);
    for (const p of [bob, carol]) {
      expect(await p.memberInboxIds(groupId)).toEqual(backendView);
      expect((await (await p.group(groupId))!.debugInfo()).maybeForked).toBe(false);
    }
    for (const i of instances) expect(await i.app.xmtp.withSession((s) => s.groupHealth(groupId))).toMatchObject({ maybeForked: false });
    const backendInbox = shown.members.find((m) => m.address === deployment.backendAddress)!.inboxId;
    // Asked through a member's client: the SDK's static helpers hard-code TLS, which no local gateway speaks.
    const [state] = await bob.client.preferences.fetchInboxStates([backendInbox]);
    expect(state!.installations).toHaveLength(1);
  });

  it(`spoke ${protocol} only: the backend made no call of the other protocol`, async () => {
    const paths = Object.keys(await nodeCallsOf(deployment.appVersion));
    const d14n = paths.filter((p) => p.startsWith("/xmtp.xmtpv4.") || p.startsWith("/grpc.health."));
    const v3 = paths.filter((p) => p.startsWith("/xmtp.mls.") || p.startsWith("/xmtp.identity."));
    if (protocol === "d14n") {
      expect(v3).toEqual([]);
      expect(d14n).toContain("/xmtp.xmtpv4.payer_api.PayerApi/PublishClientEnvelopes");
    } else {
      expect(d14n).toEqual([]);
      expect(v3).toContain("/xmtp.mls.api.v1.MlsApi/SendGroupMessages");
    }
  });
});

describe("what the suite can see", () => {
  it("a stale copy of the backend's database forks that copy from the group (maybeForked)", async () => {
    const fork = await instance();
    const dave = await person();
    // A snapshot of the backend's files as they are now…
    await fork.app.xmtp.withSession((s) => s.groupHealth(groupId));
    const stale = await mkdtemp(join(tmpdir(), "xmtp-stale-"));
    await fork.xmtp.close();
    for (const suffix of DATABASE_FILE_SUFFIXES) await cp(fork.xmtp.dbPath + suffix, join(stale, "x.db3" + suffix)).catch(() => undefined);
    // …then the group moves on (a commit by the same installation, saved as usual)…
    await addMembers(b.app, groupId, [dave.address]);
    await sendMessage(b.app, groupId, "after the snapshot");
    // …and a client opened on the old copy is the same installation, behind its own commit.
    const { signer } = createWalletSigner(deployment.env.XMTP_WALLET_KEY as `0x${string}`);
    const staleClient = await Client.create(signer, {
      ...personClientOptions({ protocol }),
      dbPath: join(stale, "x.db3"),
      dbEncryptionKey: `0x${deployment.env.XMTP_DB_ENCRYPTION_KEY}`,
      disableDeviceSync: true,
    });
    try {
      const group = await staleClient.conversations.getConversationById(groupId);
      expect(group).toBeInstanceOf(Group);
      await (group as Group<unknown>).sync().catch(() => undefined);
      expect((await (group as Group<unknown>).debugInfo()).maybeForked).toBe(true);
      // The same installation on the newest state is fine.
      expect(await b.app.xmtp.withSession((s) => s.groupHealth(groupId))).toMatchObject({ maybeForked: false });
    } finally {
      await rm(stale, { recursive: true, force: true });
    }
  });
});
});
}
