import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import createRoute from "../../api/create.js";
import groupsRoute from "../../api/groups/index.js";
import groupRoute from "../../api/groups/[id].js";
import auditRoute from "../../api/groups/[id]/audit.js";
import joinLinkRoute from "../../api/groups/[id]/join-link.js";
import membersRoute from "../../api/groups/[id]/members.js";
import messagesRoute from "../../api/groups/[id]/messages.js";
import reverifyRoute from "../../api/cron/reverify.js";
import { setApp } from "../../lib/app.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import type { Address } from "../../lib/shared/address.js";
import type { Rules } from "../../lib/shared/rules.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { ADMIN_KEY, createTestApp, type TestApp } from "../support/test-app.js";

let chain: LocalChain;
let token: Address;
let t: TestApp;
const CRON = "cron-secret-0123456789abcdef";
beforeAll(async () => {
  chain = await startLocalChain(100);
  token = (await chain.deploy("TestERC20", ["Gate", "GATE", 18])).toLowerCase() as Address;
  t = createTestApp({ env: { RPC_URL_100: chain.url, CRON_SECRET: CRON, LINK_SERVICE_URL: "", LINK_BASE_URL: "", ELIGIBILITY_CACHE_TTL_SECONDS: "0" } });
}, 60_000);
afterAll(() => chain?.stop());
afterEach(() => setApp(undefined));

const BASE = "https://gated.example.test";
const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const request = (method: string, path: string, body?: unknown, bearer = ADMIN_KEY) =>
  new Request(BASE + path, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
const gate = (minBalance: string): Rules => ({ type: "erc20", chainId: 100, token, minBalance });

async function groupWithMembers(): Promise<{ groupId: string; rich: Address; poor: Address }> {
  setApp(t.app);
  const res = await createRoute.fetch(request("POST", "/api/create", { name: "G", rules: gate("1") }));
  const { groupId } = (await res.json()) as { groupId: string };
  const [rich, poor] = [wallet(), wallet()];
  await chain.write(token, "TestERC20", "mint", [rich, 10n * 10n ** 18n]);
  await chain.write(token, "TestERC20", "mint", [poor, 10n ** 18n]);
  for (const address of [rich, poor]) {
    t.network.register(address);
    expect(await decideJoin(t.app, { groupId, address }, "join-page")).toEqual({ status: "SUCCESS" });
  }
  return { groupId, rich, poor };
}

describe("operator endpoints refuse query parameters they do not know", () => {
  it("400 naming the parameter, on every operator endpoint and the cron, before anything is done", async () => {
    const { groupId } = await groupWithMembers();
    const cases: [string, { fetch: (r: Request) => Promise<Response> }, Request][] = [
      ["POST /api/create", createRoute, request("POST", "/api/create?bogus=1", { name: "X" })],
      ["GET /api/groups", groupsRoute, request("GET", "/api/groups?bogus=1")],
      ["GET /api/groups/:id", groupRoute, request("GET", `/api/groups/${groupId}?bogus=1`)],
      ["PATCH /api/groups/:id", groupRoute, request("PATCH", `/api/groups/${groupId}?dryrun=1`, { name: "Renamed" })],
      ["GET audit", auditRoute, request("GET", `/api/groups/${groupId}/audit?bogus=1`)],
      ["POST join-link", joinLinkRoute, request("POST", `/api/groups/${groupId}/join-link?bogus=1`, { action: "rotate" })],
      ["POST members", membersRoute, request("POST", `/api/groups/${groupId}/members?bogus=1`, { addresses: [wallet()] })],
      ["DELETE members", membersRoute, request("DELETE", `/api/groups/${groupId}/members?bogus=1`, { addresses: [wallet()] })],
      ["POST messages", messagesRoute, request("POST", `/api/groups/${groupId}/messages?bogus=1`, { text: "hi" })],
      ["GET messages", messagesRoute, request("GET", `/api/groups/${groupId}/messages?bogus=1`)],
      ["GET cron", reverifyRoute, request("GET", "/api/cron/reverify?dryrun=1", undefined, CRON)],
    ];
    const commits = t.network.commits;
    for (const [label, route, req] of cases) {
      const res = await route.fetch(req);
      expect(res.status, label).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code, label).toBe("invalid_request");
      expect(body.error.message, label).toMatch(/^Invalid request: (bogus|dryrun): unknown query parameter$/);
    }
    expect(t.network.commits).toBe(commits);
    expect((await t.app.registry.get(groupId))?.name).toBe("G");
    expect((await groupsRoute.fetch(request("GET", "/api/groups?limit=5"))).status).toBe(200);
    expect((await reverifyRoute.fetch(request("GET", "/api/cron/reverify?dryRun=maybe", undefined, CRON))).status).toBe(400);
  });
});

describe("PATCH /api/groups/:id?dryRun=1", () => {
  it("names who would lose access under the new rules, with the reason, and changes nothing", async () => {
    const { groupId, rich, poor } = await groupWithMembers();
    const exempt = wallet();
    t.network.register(exempt);
    expect((await membersRoute.fetch(request("POST", `/api/groups/${groupId}/members`, { addresses: [exempt] }))).status).toBe(200);
    const before = await t.app.registry.get(groupId);
    const commits = t.network.commits;
    const res = await groupRoute.fetch(request("PATCH", `/api/groups/${groupId}?dryRun=1`, { rules: gate("5"), name: "Not applied" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      dryRun: true,
      rules: { ...gate("5"), symbol: "GATE", decimals: 18 },
      wouldLoseAccess: [{ address: poor, reason: "Hold at least 5 GATE on Gnosis" }],
      unchecked: [],
      checked: 2,
      exempt: 1,
    });
    expect(await t.app.registry.get(groupId)).toEqual(before);
    expect(t.network.commits).toBe(commits);
    expect(t.network.memberAddresses(groupId)).toEqual(expect.arrayContaining([rich, poor, exempt]));
    // Without dryRun the same PATCH applies.
    expect((await groupRoute.fetch(request("PATCH", `/api/groups/${groupId}`, { rules: gate("5") }))).status).toBe(200);
    expect((await t.app.registry.get(groupId))?.rules).toMatchObject({ minBalance: "5" });
  });

  it("a dry run without rules is a 400 (there is nothing to preview)", async () => {
    const { groupId } = await groupWithMembers();
    const res = await groupRoute.fetch(request("PATCH", `/api/groups/${groupId}?dryRun=1`, { name: "X" }));
    expect(res.status).toBe(400);
    expect((await t.app.registry.get(groupId))?.name).toBe("G");
  });
});
