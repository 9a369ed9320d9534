import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Address as ViemAddress } from "viem";
import reverifyRoute from "../../api/cron/reverify.js";
import { setApp } from "../../lib/app.js";
import type { Rules } from "../../lib/shared/rules.js";
import { webhookToken } from "../../lib/services/webhook-token.js";
import { reverifyMembers } from "../../lib/use-cases/reverify.js";
import type { Address } from "../../lib/shared/address.js";
import webhookRoute from "../../api/webhook.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { freePort } from "../../local/redis/redis-server.js";
import { post } from "../support/requests.js";
import { createTestApp, WEBHOOK_SECRET, type TestApp } from "../support/test-app.js";

let chain: LocalChain;
let token: ViemAddress;
let t: TestApp;
const CRON = "cron-secret-0123456789abcdef";
beforeAll(async () => {
  chain = await startLocalChain(100);
  token = await chain.deploy("TestERC20", ["Gate", "GATE", 18]);
}, 60_000);
afterAll(() => chain?.stop());
afterEach(() => setApp(undefined));

const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
async function setup() {
  t = createTestApp({ env: { RPC_URL_100: chain.url, RPC_URL_31337: `http://127.0.0.1:${await freePort()}`, CRON_SECRET: CRON, ELIGIBILITY_CACHE_TTL_SECONDS: "0", REVERIFY_GRACE_HOURS: "0" } });
  setApp(t.app);
}
async function group(rules: Rules): Promise<string> {
  const info = await t.app.xmtp.withSession((s) => s.createGroup({ name: "G", description: "" }));
  await t.app.registry.insertPending({ groupId: info.groupId, name: "G", description: "", rules });
  await t.app.registry.activate(info.groupId, "L");
  return info.groupId;
}
async function joinVia(groupId: string, address: Address) {
  t.network.register(address);
  const res = await webhookRoute.fetch(post(`/api/webhook?token=${webhookToken(WEBHOOK_SECRET, groupId)}`, { groupLinkId: "L", topic: groupId, walletAddress: address }));
  expect(await res.json()).toEqual({ status: "SUCCESS" });
}
const gate: () => Rules = () => ({ type: "erc20", chainId: 100, token: token.toLowerCase() as Address, minBalance: "1", decimals: 18, symbol: "GATE" });

describe("re-verification", () => {
  it("removes a member whose balance dropped, keeps holders and operator-added members, and audits the reason", async () => {
    await setup();
    const groupId = await group(gate());
    const [keeps, drops, byOperator] = [wallet(), wallet(), wallet()];
    for (const w of [keeps, drops]) await chain.write(token, "TestERC20", "mint", [w, 10n ** 18n]);
    await joinVia(groupId, keeps);
    await joinVia(groupId, drops);
    t.network.register(byOperator);
    await (await import("../../lib/use-cases/operator.js")).addMembers(t.app, groupId, [byOperator]);
    await chain.write(token, "TestERC20", "burn", [drops, 10n ** 18n]);

    const dry = await reverifyRoute.fetch(new Request("https://x.test/api/cron/reverify?dryRun=1", { headers: { authorization: `Bearer ${CRON}` } }));
    expect(dry.status).toBe(200);
    expect(await dry.json()).toMatchObject({ dryRun: true, removed: [{ groupId, address: drops, reason: "Hold at least 1 GATE on Gnosis" }] });
    expect(t.network.memberAddresses(groupId)).toContain(drops);

    const report = await reverifyMembers(t.app, { dryRun: false });
    expect(report.removed).toEqual([{ groupId, address: drops, reason: "Hold at least 1 GATE on Gnosis" }]);
    expect(report.membersChecked).toBe(2);
    expect(t.network.memberAddresses(groupId)).not.toContain(drops);
    expect(t.network.memberAddresses(groupId)).toEqual(expect.arrayContaining([keeps, byOperator, t.backendAddress]));
    const { entries } = await t.app.audit.list(groupId, { offset: 0, limit: 1 });
    expect(entries[0]).toMatchObject({ source: "reverify", action: "remove", address: drops, outcome: "removed", reason: "Hold at least 1 GATE on Gnosis" });
  });

  it("keeps a member whose chain cannot be read (skipped, not removed)", async () => {
    await setup();
    const groupId = await group({ type: "erc20", chainId: 31337, token: token.toLowerCase() as Address, minBalance: "1", decimals: 18 });
    const member = wallet();
    t.network.register(member);
    await (await import("../../lib/use-cases/operator.js")).addMembers(t.app, groupId, [member]);
    await t.app.members.remove(groupId, [member]);
    await t.app.members.record(groupId, member, "webhook", "replace");
    const report = await reverifyMembers(t.app, { dryRun: false });
    expect(report.skipped).toEqual([{ groupId, address: member }]);
    expect(report.removed).toEqual([]);
    expect(t.network.memberAddresses(groupId)).toContain(member);
  });

  it("caps removals per group per run and resumes from a cursor over groups", async () => {
    await setup();
    const first = await group(gate());
    const second = await group(gate());
    const members = [wallet(), wallet(), wallet()];
    for (const m of members) await chain.write(token, "TestERC20", "mint", [m, 10n ** 18n]);
    for (const m of members) await joinVia(first, m);
    for (const m of members) await chain.write(token, "TestERC20", "burn", [m, 10n ** 18n]);
    const limits = { groupsPerRun: 1, checksPerRun: 100, removalsPerGroup: 2 };
    // Newest group first: run 1 checks `second` (no members), run 2 checks `first` and removes 2 of 3.
    const run1 = await reverifyMembers(t.app, { dryRun: false, limits });
    expect(run1).toMatchObject({ groupsChecked: 1, removed: [], nextCursor: 1 });
    const run2 = await reverifyMembers(t.app, { dryRun: false, limits });
    expect(run2.removed).toHaveLength(2);
    expect(run2).toMatchObject({ deferred: 1, nextCursor: 0 });
    await reverifyMembers(t.app, { dryRun: false, limits });
    const run4 = await reverifyMembers(t.app, { dryRun: false, limits });
    expect(run4.removed).toHaveLength(1);
    expect(t.network.memberAddresses(first)).toEqual([t.backendAddress]);
    expect(second).not.toBe(first);
  });

  it("an operator's add makes a member who joined through the rules exempt (tightened rules keep them)", async () => {
    await setup();
    const groupId = await group(gate());
    const member = wallet();
    await chain.write(token, "TestERC20", "mint", [member, 10n ** 18n]);
    await joinVia(groupId, member);
    await (await import("../../lib/use-cases/operator.js")).addMembers(t.app, groupId, [member]);
    expect((await t.app.members.list(groupId)).find((m) => m.address === member)?.via).toBe("operator");
    await chain.write(token, "TestERC20", "burn", [member, 10n ** 18n]);
    const report = await reverifyMembers(t.app, { dryRun: false });
    expect(report.removed).toEqual([]);
    expect(t.network.memberAddresses(groupId)).toContain(member);
  });

  it("someone the operator once added who left and came back through the rules is re-verified like anyone", async () => {
    await setup();
    const groupId = await group(gate());
    const member = wallet();
    t.network.register(member);
    await (await import("../../lib/use-cases/operator.js")).addMembers(t.app, groupId, [member]);
    // They leave the group from their own app: XMTP drops them, our record stays as it was.
    const inbox = t.network.inboxes.get(member)!;
    t.network.groups.get(groupId)!.members.delete(inbox);
    await chain.write(token, "TestERC20", "mint", [member, 10n ** 18n]);
    await joinVia(groupId, member);
    expect((await t.app.members.list(groupId)).find((m) => m.address === member)?.via).toBe("webhook");
    await chain.write(token, "TestERC20", "burn", [member, 10n ** 18n]);
    expect((await reverifyMembers(t.app, { dryRun: false })).removed).toEqual([{ groupId, address: member, reason: "Hold at least 1 GATE on Gnosis" }]);
  });

  it("records a group that cannot be checked, passes over it, and still checks the groups after it", async () => {
    await setup();
    const older = await group(gate());
    const poisoned = await group(gate());
    const drops = wallet();
    await chain.write(token, "TestERC20", "mint", [drops, 10n ** 18n]);
    await joinVia(older, drops);
    await chain.write(token, "TestERC20", "burn", [drops, 10n ** 18n]);
    // The newest group's record was written by something else and no longer parses.
    await t.app.redis.set(`${t.config.redis.keyPrefix}:group:${poisoned}`, "{not json");
    const report = await reverifyMembers(t.app, { dryRun: false });
    expect(report.failedGroups).toEqual([{ groupId: poisoned, error: "CorruptStateError" }]);
    expect(report.removed).toEqual([{ groupId: older, address: drops, reason: "Hold at least 1 GATE on Gnosis" }]);
    expect(report).toMatchObject({ stoppedBy: "done", nextCursor: 0 });
  });

  it("saves its cursor after every group: a run killed midway resumes at the group it had not finished", async () => {
    await setup();
    const [, second] = [await group(gate()), await group(gate()), await group(gate())];
    // Newest first: the run finishes the third group, then hangs on the second until the function is killed.
    let gets = 0;
    const hanging = { ...t.app, registry: { ...t.app.registry, get: async (id: string) => (++gets === 2 ? new Promise<never>(() => {}) : t.app.registry.get(id)) } };
    void reverifyMembers(hanging, { dryRun: false });
    await new Promise((r) => setTimeout(r, 300));
    expect(JSON.parse(String(await t.app.redis.get(`${t.config.redis.keyPrefix}:reverify:cursor`)))).toEqual({ group: 1, after: null });
    const seen: string[] = [];
    const watching = { ...t.app, registry: { ...t.app.registry, get: async (id: string) => (seen.push(id), t.app.registry.get(id)) } };
    const next = await reverifyMembers(watching, { dryRun: false, limits: { groupsPerRun: 1 } });
    expect(seen).toEqual([second]);
    expect(next).toMatchObject({ groupsChecked: 1, nextCursor: 2 });
  });

  it("stops at its time budget, midway through a group, and the next run carries on from the last member it checked", async () => {
    await setup();
    const groupId = await group(gate());
    const members = Array.from({ length: 6 }, () => wallet());
    for (const m of members) await chain.write(token, "TestERC20", "mint", [m, 10n ** 18n]);
    for (const m of members) await joinVia(groupId, m);
    let clock = 0;
    // Each look at the clock costs 10 ms of budget: the first run gets through part of the group.
    const now = () => (clock += 10);
    const seen: string[] = [];
    const counting = { ...t.app, eligibility: { ...t.app.eligibility, check: async (rules: Rules, wallets: Address | readonly Address[]) => (seen.push(typeof wallets === "string" ? wallets : wallets[0]!), t.app.eligibility.check(rules, wallets)) } };
    const first = await reverifyMembers(counting, { dryRun: false, limits: { timeBudgetMs: 25 }, now });
    expect(first.stoppedBy).toBe("time");
    expect(first.membersChecked).toBeGreaterThan(0);
    expect(first.membersChecked).toBeLessThan(6);
    expect(first.nextAfter).toBe(seen.at(-1));
    clock = 0;
    const second = await reverifyMembers(counting, { dryRun: false, limits: { timeBudgetMs: 10_000 }, now });
    expect(second.stoppedBy).toBe("done");
    expect([...seen].sort()).toEqual([...members].sort());
  });

  it("starts no removal once its time is spent: the members left are removed by the next run, which starts just before them", async () => {
    await setup();
    const groupId = await group(gate());
    // 60 members who hold nothing: two commits (at most 50 people each), and the time runs out after the first.
    const lapsed = Array.from({ length: 60 }, () => wallet()).sort();
    for (const address of lapsed) t.network.register(address);
    await t.app.members.recordMany(groupId, lapsed.map((address) => ({ address, via: "webhook" as const, mode: "keep" as const })));
    let clock = 0;
    let sessions = 0;
    const timed = {
      ...t.app,
      xmtp: {
        ...t.app.xmtp,
        // Session 1 lists the group's members; session 2 is the first removal commit, after which the time is up.
        withSession: async <T,>(work: Parameters<typeof t.app.xmtp.withSession<T>>[0], options?: Parameters<typeof t.app.xmtp.withSession<T>>[1]) => {
          const result = await t.app.xmtp.withSession(work, options);
          if (++sessions === 2) clock += 1_000_000;
          return result;
        },
      },
    };
    const first = await reverifyMembers(timed, { dryRun: false, now: () => clock });
    expect(first.removed).toHaveLength(50);
    expect(first).toMatchObject({ stoppedBy: "time", deferred: 10, nextAfter: lapsed[49] });
    expect(sessions).toBe(2);
    const kept = (await t.app.members.list(groupId)).map((m) => m.address).sort();
    expect(kept).toEqual(lapsed.slice(50));
    clock = 0;
    const second = await reverifyMembers(t.app, { dryRun: false, now: () => clock });
    expect(second.removed.map((r) => r.address).sort()).toEqual(lapsed.slice(50));
    expect(second).toMatchObject({ stoppedBy: "done", membersChecked: 10 });
    expect(await t.app.members.list(groupId)).toEqual([]);
  });

  it("checks a group's members side by side: their chain reads go out in shared JSON-RPC batches", async () => {
    const counted = { requests: 0, calls: 0 };
    const counting: typeof fetch = async (input, init) => {
      const body = JSON.parse(typeof init?.body === "string" ? init.body : "null") as unknown;
      counted.requests++;
      counted.calls += Array.isArray(body) ? body.length : 1;
      return fetch(input, init);
    };
    t = createTestApp({ env: { RPC_URL_100: chain.url, CRON_SECRET: CRON, ELIGIBILITY_CACHE_TTL_SECONDS: "0", REVERIFY_GRACE_HOURS: "0" }, overrides: { fetch: counting } });
    const groupId = await group(gate());
    const members = Array.from({ length: 100 }, () => wallet());
    await t.app.members.recordMany(groupId, members.map((address) => ({ address, via: "webhook" as const, mode: "keep" as const })));
    for (const m of members.slice(0, 90)) await chain.write(token, "TestERC20", "mint", [m, 10n ** 18n]);
    counted.requests = counted.calls = 0;
    const report = await reverifyMembers(t.app, { dryRun: true });
    expect(report.membersChecked).toBe(100);
    expect(report.removed.map((r) => r.address).sort()).toEqual(members.slice(90).sort());
    // Each member costs at least a balance read; one HTTP request per member would be 100 or more.
    expect(counted.calls).toBeGreaterThanOrEqual(100);
    expect(counted.requests).toBeLessThanOrEqual(10);
  });

  it("401 without Vercel's cron bearer", async () => {
    await setup();
    const res = await reverifyRoute.fetch(new Request("https://x.test/api/cron/reverify", { headers: { authorization: "Bearer wrong" } }));
    expect(res.status).toBe(401);
  });
});
