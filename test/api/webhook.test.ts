import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import webhookRoute from "../../api/webhook.js";
import { setApp } from "../../lib/app.js";
import { webhookToken } from "../../lib/services/webhook-token.js";
import { MAX_GROUP_MEMBERS } from "../../lib/xmtp/port.js";
import type { Rules } from "../../lib/shared/rules.js";
import { post } from "../support/requests.js";
import { createTestApp, WEBHOOK_SECRET, type TestApp } from "../support/test-app.js";

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
  setApp(t.app);
});
afterEach(() => setApp(undefined));

const wallet = () => privateKeyToAccount(generatePrivateKey()).address;

/** A group created on the fake network and recorded as active with link "L1". */
async function activeGroup(rules: Rules = { type: "open" }): Promise<string> {
  const info = await t.app.xmtp.withSession((s) => s.createGroup({ name: "G", description: "" }));
  await t.app.registry.insertPending({ groupId: info.groupId, name: "G", description: "", rules });
  await t.app.registry.activate(info.groupId, "L1");
  return info.groupId;
}

const join = (groupId: string, walletAddress: string, options: { token?: string | null; linkId?: string } = {}) => {
  const token = options.token === undefined ? webhookToken(WEBHOOK_SECRET, groupId) : options.token;
  const query = token === null ? "" : `?token=${encodeURIComponent(token)}`;
  return webhookRoute.fetch(post(`/api/webhook${query}`, { groupLinkId: options.linkId ?? "L1", topic: groupId, walletAddress }));
};

describe("POST /api/webhook", () => {
  it("adds an eligible wallet with an XMTP inbox and answers SUCCESS; the audit log records it", async () => {
    const groupId = await activeGroup();
    const address = wallet();
    t.network.register(address);
    const res = await join(groupId, address);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "SUCCESS" });
    expect(t.network.memberAddresses(groupId)).toContain(address.toLowerCase());
    const { entries } = await t.app.audit.list(groupId, { offset: 0, limit: 10 });
    expect(entries).toEqual([expect.objectContaining({ source: "webhook", address: address.toLowerCase(), outcome: "added" })]);
  });

  it("answers SUCCESS again for a member without a new commit", async () => {
    const groupId = await activeGroup();
    const address = wallet();
    t.network.register(address);
    await join(groupId, address);
    const commits = t.network.commits;
    expect(await (await join(groupId, address.toLowerCase())).json()).toEqual({ status: "SUCCESS" });
    expect(t.network.commits).toBe(commits);
  });

  it("DENIED with the rule's reason for a wallet that is not eligible", async () => {
    const allowed = wallet();
    const groupId = await activeGroup({ type: "allowlist", addresses: [allowed.toLowerCase() as `0x${string}`] });
    const other = wallet();
    t.network.register(other);
    expect(await (await join(groupId, other)).json()).toEqual({ status: "DENIED", reason: "This wallet is not on the group's allowlist" });
    expect(t.network.memberAddresses(groupId)).not.toContain(other.toLowerCase());
    t.network.register(allowed);
    expect(await (await join(groupId, allowed)).json()).toEqual({ status: "SUCCESS" });
  });

  it("DENIED telling the person to open an XMTP app when the wallet has no inbox", async () => {
    const groupId = await activeGroup();
    const body = (await (await join(groupId, wallet())).json()) as { status: string; reason: string };
    expect(body.status).toBe("DENIED");
    expect(body.reason).toMatch(/open an XMTP app/);
  });

  it("DENIED 'This group is full' at XMTP's member limit", async () => {
    const groupId = await activeGroup();
    const group = t.network.groups.get(groupId)!;
    for (let i = group.members.size; i < MAX_GROUP_MEMBERS; i++) group.members.set(`filler${i}`, { addresses: [], isAdmin: false });
    const address = wallet();
    t.network.register(address);
    expect(await (await join(groupId, address)).json()).toEqual({ status: "DENIED", reason: "This group is full" });
  });

  it("DENIED 'not active' for an unknown topic or a link id that is not the group's", async () => {
    const groupId = await activeGroup();
    const address = wallet();
    t.network.register(address);
    expect(await (await join("deadbeef", address)).json()).toEqual({ status: "DENIED", reason: "This group link is not active" });
    expect(await (await join(groupId, address, { linkId: "OTHER" })).json()).toEqual({
      status: "DENIED",
      reason: "This group link is not active",
    });
    expect(t.network.memberAddresses(groupId)).not.toContain(address.toLowerCase());
  });

  it("401 without the token, with another group's token, or a forged one; XMTP is never started", async () => {
    const groupId = await activeGroup();
    const other = await activeGroup();
    const sessions = t.network.sessions;
    for (const token of [null, webhookToken(WEBHOOK_SECRET, other), "forged", webhookToken("another-secret-xxxxxxxxxxxxxxxxxxxxx", groupId)]) {
      const res = await join(groupId, wallet(), { token });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ status: "ERROR" });
    }
    expect(t.network.sessions).toBe(sessions);
  });

  it("503 ERROR asking to try again when XMTP is down, and audits the failure", async () => {
    const groupId = await activeGroup();
    t.network.down = true;
    const res = await join(groupId, wallet());
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; reason: string };
    expect(body.status).toBe("ERROR");
    expect(body.reason).toMatch(/try again/);
    const { entries } = await t.app.audit.list(groupId, { offset: 0, limit: 1 });
    expect(entries[0]).toMatchObject({ outcome: "error" });
  });

  it("503 ERROR (not DENIED) when the chain cannot be read, and nothing is cached", async () => {
    t = createTestApp({ env: { RPC_URL_100: "http://127.0.0.1:9", ELIGIBILITY_CACHE_TTL_SECONDS: "60" } });
    setApp(t.app);
    const groupId = await activeGroup({ type: "erc20", chainId: 100, token: `0x${"ab".repeat(20)}`, minBalance: "1", decimals: 18, symbol: "TKN" });
    const address = wallet();
    t.network.register(address);
    const res = await join(groupId, address);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: "ERROR", reason: "Could not check this wallet's holdings right now; try again in a moment" });
    expect(t.network.memberAddresses(groupId)).not.toContain(address.toLowerCase());
    expect(await t.app.redis.keys(`${t.config.redis.keyPrefix}:elig:*`)).toEqual([]);
  });

  it("429 with Retry-After past the per-wallet limit, and lets the wallet in again once the window has passed", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    t = createTestApp({ env: { WEBHOOK_RATE_LIMIT_PER_WALLET: "2/60" }, overrides: { now: () => new Date(clock) } });
    setApp(t.app);
    const groupId = await activeGroup();
    const address = wallet();
    t.network.register(address);
    expect((await join(groupId, address)).status).toBe(200);
    expect((await join(groupId, address)).status).toBe(200);
    const limited = await join(groupId, address);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ status: "ERROR", reason: "Too many join requests from this wallet; try again later" });
    expect((await join(groupId, wallet())).status).toBe(200); // another wallet is not affected
    clock += 125_000;
    expect((await join(groupId, address)).status).toBe(200);
  });

  it("429 past the per-group ceiling", async () => {
    t = createTestApp({ env: { WEBHOOK_RATE_LIMIT_PER_GROUP: "3/300" } });
    setApp(t.app);
    const groupId = await activeGroup();
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await join(groupId, wallet())).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it.each([
    ["short address", { groupLinkId: "L1", topic: "ab", walletAddress: "0x1234" }, /walletAddress/],
    ["bad checksum", { groupLinkId: "L1", topic: "ab", walletAddress: "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266" }, /checksum/],
    ["missing topic", { groupLinkId: "L1", walletAddress: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" }, /topic/],
    ["non-hex topic", { groupLinkId: "L1", topic: "zz", walletAddress: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" }, /topic/],
  ])("400 for %s", async (_label, body, message) => {
    const res = await webhookRoute.fetch(post("/api/webhook?token=x", body));
    expect(res.status).toBe(400);
    const json = (await res.json()) as { status: string; reason: string };
    expect(json.status).toBe("ERROR");
    expect(json.reason).toMatch(message);
  });

  it("accepts a valid EIP-55 checksummed address and normalizes it", async () => {
    const groupId = await activeGroup();
    const address = wallet();
    t.network.register(address);
    expect(address).not.toBe(address.toLowerCase());
    expect(await (await join(groupId, address)).json()).toEqual({ status: "SUCCESS" });
  });
});
