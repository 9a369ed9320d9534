import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import webhookRoute from "../../api/webhook.js";
import { setApp, type App } from "../../lib/app.js";
import { webhookToken } from "../../lib/services/webhook-token.js";
import type { Address } from "../../lib/shared/address.js";
import type { Rules } from "../../lib/shared/rules.js";
import { personWallets } from "../../lib/membership/membership.js";
import { reverifyMembers } from "../../lib/use-cases/reverify.js";
import { XmtpUnavailableError } from "../../lib/xmtp/port.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { post } from "../support/requests.js";
import { createTestApp, WEBHOOK_SECRET, type TestApp } from "../support/test-app.js";

// The doors and the cron over the XMTP double (the real client is in test/e2e/linked-wallets.test.ts): how linked
// wallets are gathered, and that a failure to read them is never a decision on fewer wallets.
let chain: LocalChain;
let token: Address;
let t: TestApp;
beforeAll(async () => {
  chain = await startLocalChain(100);
  token = (await chain.deploy("TestERC20", ["Gate", "GATE", 18])).toLowerCase() as Address;
}, 60_000);
afterAll(() => chain?.stop());
afterEach(() => setApp(undefined));

const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const gate = (): Rules => ({ type: "erc20", chainId: 100, token, minBalance: "1", decimals: 18, symbol: "GATE" });
async function groupOf(app: App, rules: Rules): Promise<string> {
  const info = await app.xmtp.withSession((s) => s.createGroup({ name: "G", description: "" }));
  await app.registry.insertPending({ groupId: info.groupId, name: "G", description: "", rules });
  await app.registry.activate(info.groupId, "L");
  return info.groupId;
}
const join = (groupId: string, address: Address) =>
  webhookRoute.fetch(post(`/api/webhook?token=${webhookToken(WEBHOOK_SECRET, groupId)}`, { groupLinkId: "L", topic: groupId, walletAddress: address }));
/** The app with the inbox-addresses read failing as the network does when it is down. */
const unreadable = (app: App): App => ({
  ...app,
  xmtp: { ...app.xmtp, inboxAddresses: async () => Promise.reject(new XmtpUnavailableError("XMTP inbox addresses failed: network unavailable")) },
});

describe("the person's wallets at every door", () => {
  it("a webhook join counts the tokens on a wallet linked to the inbox", async () => {
    t = createTestApp({ env: { RPC_URL_100: chain.url, ELIGIBILITY_CACHE_TTL_SECONDS: "0" } });
    setApp(t.app);
    const [joining, linked] = [wallet(), wallet()];
    t.network.link(t.network.register(joining), linked);
    await chain.write(token, "TestERC20", "mint", [linked, 10n ** 18n]);
    const groupId = await groupOf(t.app, gate());
    expect(await (await join(groupId, joining)).json()).toEqual({ status: "SUCCESS" });
    expect(t.network.memberAddresses(groupId)).toContain(joining);
  });

  it("linked wallets that cannot be read: 503 ERROR (try again), never a denial on the joining wallet alone", async () => {
    t = createTestApp({ env: { RPC_URL_100: chain.url, ELIGIBILITY_CACHE_TTL_SECONDS: "0" } });
    const joining = wallet();
    t.network.register(joining);
    const groupId = await groupOf(t.app, gate());
    setApp(unreadable(t.app));
    const res = await join(groupId, joining);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: "ERROR" });
    expect((await t.app.audit.list(groupId, { offset: 0, limit: 10, kind: "changes" })).entries).toContainEqual(expect.objectContaining({ outcome: "error" }));
  });

  it("an open group reads no linked wallets (nothing to count)", async () => {
    t = createTestApp();
    const joining = wallet();
    t.network.register(joining);
    const groupId = await groupOf(t.app, { type: "open" });
    setApp(unreadable(t.app));
    expect(await (await join(groupId, joining)).json()).toEqual({ status: "SUCCESS" });
  });

  it("a wallet unlinked since its inbox was remembered counts alone again (the inbox is asked afresh)", async () => {
    t = createTestApp();
    const [joining, other] = [wallet(), wallet()];
    const inbox = t.network.register(joining);
    t.network.link(inbox, other);
    expect((await personWallets(t.app, joining)).sort()).toEqual([joining, other].sort());
    t.network.unlink(joining);
    expect(await personWallets(t.app, joining)).toEqual([joining]);
    expect(await t.app.inboxes.get(joining)).toBeNull();
  });

  it("the cron keeps a member whose linked wallets cannot be read, and lists them as skipped", async () => {
    t = createTestApp({ env: { RPC_URL_100: chain.url, ELIGIBILITY_CACHE_TTL_SECONDS: "0" } });
    setApp(t.app);
    const [joining, linked] = [wallet(), wallet()];
    t.network.link(t.network.register(joining), linked);
    await chain.write(token, "TestERC20", "mint", [linked, 10n ** 18n]);
    const groupId = await groupOf(t.app, gate());
    expect(await (await join(groupId, joining)).json()).toEqual({ status: "SUCCESS" });
    const report = await reverifyMembers(unreadable(t.app), { dryRun: false });
    expect(report.skipped).toEqual([{ groupId, address: joining }]);
    expect(report.removed).toEqual([]);
    expect(t.network.memberAddresses(groupId)).toContain(joining);
    // Read again, the linked wallet still holds the token: kept.
    expect((await reverifyMembers(t.app, { dryRun: true })).removed).toEqual([]);
  });
});
