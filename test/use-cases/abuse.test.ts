import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Address as ViemAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import createRoute from "../../api/create.js";
import reverifyRoute from "../../api/cron/reverify.js";
import joinPageRoute from "../../api/join-page.js";
import challengeRoute from "../../api/join/challenge.js";
import joinRoute from "../../api/join/index.js";
import webhookRoute from "../../api/webhook.js";
import { setApp } from "../../lib/app.js";
import type { Rules } from "../../lib/shared/rules.js";
import { webhookToken } from "../../lib/services/webhook-token.js";
import { ipSubject } from "../../lib/stores/rate-limits.js";
import type { Address } from "../../lib/shared/address.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { adminPost, post } from "../support/requests.js";
import { createTestApp, WEBHOOK_SECRET, type TestApp } from "../support/test-app.js";

// Attacks from the review of the join paths, each reproduced against the real handlers (real Redis, real anvil
// chains, XMTP double): they succeeded before the fixes.
const SITE = "https://gated.example.test";
const HOME = 31337; // where the attacker controls a wallet contract
const TOKEN_CHAIN = 10; // where the victim's wallet holds the gating token
let home: LocalChain;
let tokenChain: LocalChain;
let gateToken: ViemAddress;
let t: TestApp;
let ipCounter = 0;
const freshIp = () => `198.18.${Math.floor(ipCounter / 250)}.${(ipCounter++ % 250) + 1}`;
const account = () => privateKeyToAccount(generatePrivateKey());

beforeAll(async () => {
  [home, tokenChain] = await Promise.all([startLocalChain(HOME), startLocalChain(TOKEN_CHAIN)]);
  gateToken = await tokenChain.deploy("TestERC20", ["Gate", "GATE", 18]);
}, 60_000);
afterAll(async () => {
  setApp(undefined);
  await Promise.all([home?.stop(), tokenChain?.stop()]);
});
afterEach(() => setApp(undefined));

function useApp(env: Record<string, string> = {}): TestApp {
  t = createTestApp({
    env: { LINK_SERVICE_URL: "", LINK_BASE_URL: "", [`RPC_URL_${HOME}`]: home.url, [`RPC_URL_${TOKEN_CHAIN}`]: tokenChain.url, ELIGIBILITY_CACHE_TTL_SECONDS: "0", ...env },
  });
  setApp(t.app);
  return t;
}

async function createGroup(rules: Rules = { type: "open" }): Promise<{ groupId: string; linkId: string }> {
  const res = await createRoute.fetch(adminPost("/api/create", { name: "Gated", rules }));
  expect(res.status).toBe(201);
  const body = (await res.json()) as { groupId: string; joinLinkId: string };
  return { groupId: body.groupId, linkId: body.joinLinkId };
}
const challenge = async (linkId: string, address: string, ip: string, chainId = HOME) => {
  const res = await challengeRoute.fetch(post("/api/join/challenge", { linkId, address, chainId }, { "x-forwarded-for": ip }));
  return { status: res.status, body: (await res.json()) as { message: string; error?: { message: string } } };
};
const submit = async (message: string, signature: string, ip: string) => {
  const res = await joinRoute.fetch(post("/api/join", { message, signature }, { "x-forwarded-for": ip }));
  return { status: res.status, body: (await res.json()) as { status?: string; reason?: string; error?: { message: string } } };
};
const signIn = async (linkId: string, signer: PrivateKeyAccount, ip: string, address: string = signer.address, chainId = HOME) => {
  const issued = await challenge(linkId, address, ip, chainId);
  expect(issued.status).toBe(200);
  return submit(issued.body.message, await signer.signMessage({ message: issued.body.message }), ip);
};

describe("1. nobody can lock a wallet out of the join page", () => {
  it("challenges naming the victim for made-up links, or from the attacker's network, leave the victim's own untouched", async () => {
    useApp({ JOIN_RATE_LIMIT_PER_ADDRESS: "3/600" });
    const { linkId } = await createGroup();
    const victim = account();
    t.network.register(victim.address);
    const attacker = freshIp();
    for (let i = 0; i < 10; i++) expect((await challenge("Z".repeat(21) + String(i % 10), victim.address, attacker)).status).toBe(404);
    for (let i = 0; i < 10; i++) await challenge(linkId, victim.address, attacker);
    expect((await challenge(linkId, victim.address, attacker)).status).toBe(429);
    expect((await signIn(linkId, victim, freshIp())).body).toMatchObject({ status: "SUCCESS" });
  });

  it("forged joins naming the victim are not counted against the victim's address", async () => {
    useApp({ JOIN_RATE_LIMIT_PER_ADDRESS: "3/600" });
    const { linkId } = await createGroup();
    const victim = account();
    t.network.register(victim.address);
    const forged = createSiweMessage({
      domain: new URL(SITE).host,
      address: victim.address,
      uri: `${SITE}/join/${linkId}`,
      version: "1",
      chainId: HOME,
      nonce: "f".repeat(32),
      issuedAt: new Date(),
      expirationTime: new Date(Date.now() + 60_000),
    });
    for (let i = 0; i < 10; i++) expect((await submit(forged, "0x00", freshIp())).status).toBe(401);
    // A real message with a junk signature: refused, and not counted either.
    const issued = await challenge(linkId, victim.address, freshIp());
    for (let i = 0; i < 10; i++) expect((await submit(issued.body.message, `0x${"11".repeat(65)}`, freshIp())).status).toBe(401);
    expect((await submit(issued.body.message, await victim.signMessage({ message: issued.body.message }), freshIp())).body).toMatchObject({ status: "SUCCESS" });
  });
});

describe("2. wallets the rules turn away use up nothing", () => {
  const allowlisted = account();
  const rules = (): Rules => ({ type: "allowlist", addresses: [allowlisted.address.toLowerCase() as Address] });

  it("through the webhook: 20 ineligible wallets are DENIED (not 429), the listed person still gets in, and the audit keeps the join", async () => {
    useApp({ LINK_SERVICE_URL: "https://links.example.test/api/groups/create", LINK_BASE_URL: "https://links.example.test/group/", WEBHOOK_RATE_LIMIT_PER_GROUP: "5/300" });
    const groupId = (await t.app.xmtp.withSession((s) => s.createGroup({ name: "G", description: "" }))).groupId;
    await t.app.registry.insertPending({ groupId, name: "G", description: "", rules: rules() });
    await t.app.registry.activate(groupId, "L");
    const join = (wallet: string) =>
      webhookRoute.fetch(post(`/api/webhook?token=${webhookToken(WEBHOOK_SECRET, groupId)}`, { groupLinkId: "L", topic: groupId, walletAddress: wallet }));
    for (let i = 0; i < 20; i++) {
      const res = await join(account().address);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: "DENIED" });
    }
    t.network.register(allowlisted.address);
    expect(await (await join(allowlisted.address)).json()).toEqual({ status: "SUCCESS" });
    const changes = await t.app.audit.list(groupId, { offset: 0, limit: 10, kind: "changes" });
    expect(changes.entries.map((e) => [e.address, e.outcome])).toEqual([[allowlisted.address.toLowerCase(), "added"]]);
    expect((await t.app.audit.list(groupId, { offset: 0, limit: 1, kind: "denials" })).total).toBe(20);
  });

  it("through the join page: the budget counts eligible admissions only", async () => {
    useApp({ WEBHOOK_RATE_LIMIT_PER_GROUP: "2/300" });
    const { linkId } = await createGroup(rules());
    for (let i = 0; i < 8; i++) expect((await signIn(linkId, account(), freshIp())).body).toMatchObject({ status: "DENIED" });
    t.network.register(allowlisted.address);
    expect((await signIn(linkId, allowlisted, freshIp())).body).toMatchObject({ status: "SUCCESS" });
  });

  it("a person told 'busy' by the group's budget keeps their signature: it works once there is room", async () => {
    let clock = Date.parse("2026-06-01T00:00:00Z");
    t = createTestApp({
      env: { LINK_SERVICE_URL: "", LINK_BASE_URL: "", WEBHOOK_RATE_LIMIT_PER_GROUP: "1/60" },
      overrides: { now: () => new Date(clock) },
    });
    setApp(t.app);
    const { linkId } = await createGroup();
    const [first, second] = [account(), account()];
    t.network.register(first.address);
    t.network.register(second.address);
    expect((await signIn(linkId, first, freshIp())).body).toMatchObject({ status: "SUCCESS" });
    const issued = await challenge(linkId, second.address, freshIp());
    const signature = await second.signMessage({ message: issued.body.message });
    expect((await submit(issued.body.message, signature, freshIp())).status).toBe(429);
    clock += 120_000;
    expect((await submit(issued.body.message, signature, freshIp())).body).toMatchObject({ status: "SUCCESS" });
  });
});

describe("3. a smart-contract wallet is checked on the chain the rules read", () => {
  it("refuses a wallet contract at the victim's address signed on another chain, and admits the real one on the token's chain", async () => {
    useApp();
    const attacker = account();
    const owner = account();
    // The victim's wallet contract on the token's chain holds the gate. On another chain the same address belongs
    // to a contract the attacker controls (same deployer and nonce: the way the Wintermute Safe was taken on Optimism).
    const victimsWallet = await tokenChain.deploy("OwnedWallet", [owner.address]);
    await home.deploy("Reverter"); // brings the deployer's nonce level with the token chain's
    const attackersWallet = await home.deploy("OwnedWallet", [attacker.address]);
    expect(attackersWallet).toBe(victimsWallet);
    await tokenChain.write(gateToken, "TestERC20", "mint", [victimsWallet, 10n ** 18n]);
    t.network.register(victimsWallet);
    const { groupId, linkId } = await createGroup({ type: "erc20", chainId: TOKEN_CHAIN, token: gateToken.toLowerCase() as Address, minBalance: "1" });

    const spoofed = await signIn(linkId, attacker, freshIp(), attackersWallet, HOME);
    expect(spoofed.status).toBe(401);
    expect(spoofed.body.error?.message).toMatch(/checks smart-contract wallets on Optimism only: switch your wallet to Optimism/);
    expect(t.network.memberAddresses(groupId)).not.toContain(attackersWallet.toLowerCase());

    expect((await signIn(linkId, owner, freshIp(), victimsWallet, TOKEN_CHAIN)).body).toMatchObject({ status: "SUCCESS" });
    expect(t.network.memberAddresses(groupId)).toContain(victimsWallet.toLowerCase());
  });

  it("an allowlist names no chain: wallet contracts are refused with a reason, keys still sign in", async () => {
    useApp();
    const owner = account();
    const wallet = await home.deploy("OwnedWallet", [owner.address]);
    const keyHolder = account();
    t.network.register(wallet);
    t.network.register(keyHolder.address);
    const { linkId } = await createGroup({ type: "allowlist", addresses: [wallet.toLowerCase() as Address, keyHolder.address.toLowerCase() as Address] });
    const refused = await signIn(linkId, owner, freshIp(), wallet, HOME);
    expect(refused.status).toBe(401);
    expect(refused.body.error?.message).toMatch(/does not accept smart-contract wallets/);
    expect((await signIn(linkId, keyHolder, freshIp())).body).toMatchObject({ status: "SUCCESS" });
  });
});

describe("7. smaller ones", () => {
  it("the cron's 401 names nothing about its configuration", async () => {
    useApp();
    const res = await reverifyRoute.fetch(new Request(`${SITE}/api/cron/reverify`, { headers: { authorization: "Bearer anything" } }));
    expect(res.status).toBe(401);
    expect(JSON.stringify(await res.json())).not.toMatch(/CRON_SECRET|configured/i);
  });

  it("counts IPv6 clients per /64, IPv4 per address", () => {
    expect(ipSubject("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64");
    expect(ipSubject("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(ipSubject("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(ipSubject("2001:0db8:0001:0002::ffff")).toBe("2001:db8:1:2::/64");
    expect(ipSubject("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(ipSubject("192.0.2.7")).toBe("192.0.2.7");
  });

  it("one IPv6 client rotating addresses in its /64 shares one limit", async () => {
    useApp({ JOIN_RATE_LIMIT_PER_IP: "3/60" });
    const { linkId } = await createGroup();
    const statuses = [];
    for (let i = 1; i <= 4; i++) statuses.push((await challenge(linkId, account().address, `2001:db8:5:6::${i.toString(16)}`)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await challenge(linkId, account().address, "2001:db8:5:7::1")).status).toBe(200);
  });

  it("limits join page loads per network with a friendly 429 page, and reads nothing for a malformed link", async () => {
    useApp({ JOIN_PAGE_RATE_LIMIT_PER_IP: "2/60" });
    const { linkId } = await createGroup();
    const page = (ip: string, id = linkId) => joinPageRoute.fetch(new Request(`${SITE}/join/${id}`, { headers: { "x-forwarded-for": ip } }));
    const ip = freshIp();
    expect((await page(ip)).status).toBe(200);
    expect((await page(ip)).status).toBe(200);
    const busy = await page(ip);
    expect(busy.status).toBe(429);
    expect(Number(busy.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await busy.text()).toContain("Try again in a minute");
    expect((await page(freshIp())).status).toBe(200);
    // Malformed ids never reach Redis, so they cost no budget either.
    for (let i = 0; i < 5; i++) expect((await page(ip, "not-a-link")).status).toBe(404);
  });
});


