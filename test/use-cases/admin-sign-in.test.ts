import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, encodeFunctionData, http, serializeErc6492Signature, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import challengeRoute from "../../api/admin/challenge.js";
import sessionRoute from "../../api/admin/session.js";
import joinChallengeRoute from "../../api/join/challenge.js";
import createRoute from "../../api/create.js";
import { setApp } from "../../lib/app.js";
import { adminSession } from "../../lib/use-cases/admin-sign-in.js";
import { ADMIN_SESSION_TTL_SECONDS } from "../../lib/stores/admin-sessions.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { adminPost, post } from "../support/requests.js";
import { createTestApp, testRedis, type TestApp } from "../support/test-app.js";

// Dashboard sign-in through its two endpoints: real Redis (bridge), real anvil for smart-contract wallets, the
// join page's verifier. The cookie and the operator API are tested over HTTP in test/api/admin.test.ts.
const CHAIN = 31337;
const SITE = "https://gated.example.test";
let chain: LocalChain;
let t: TestApp;
let clock = Date.now();
const admin = privateKeyToAccount(generatePrivateKey());
const walletOwner = privateKeyToAccount(generatePrivateKey());
let contractAdmin: Address;
let counterfactualAdmin: Address;
let plainListedContract: Address;
let factory: Address;
const SALT = `0x${"09".repeat(32)}` as const;

beforeAll(async () => {
  chain = await startLocalChain(CHAIN);
  contractAdmin = await chain.deploy("OwnedWallet", [walletOwner.address]);
  plainListedContract = await chain.deploy("OwnedWallet", [walletOwner.address]);
  factory = await chain.deploy("OwnedWalletFactory");
  const rpc = createPublicClient({ transport: http(chain.url) });
  counterfactualAdmin = (await rpc.readContract({ address: factory, abi: chain.contracts.OwnedWalletFactory!.abi, functionName: "addressOf", args: [walletOwner.address, SALT] })) as Address;
  t = createTestApp({
    env: {
      LINK_SERVICE_URL: "",
      LINK_BASE_URL: "",
      [`RPC_URL_${CHAIN}`]: chain.url,
      ADMIN_ADDRESSES: `${admin.address}, eip155:${CHAIN}:${contractAdmin},eip155:${CHAIN}:${counterfactualAdmin} ${plainListedContract}`,
    },
    overrides: { now: () => new Date(clock) },
  });
  setApp(t.app);
}, 60_000);
afterAll(async () => {
  setApp(undefined);
  await chain.stop();
});
afterEach(() => {
  clock = Date.now();
});

let ipCounter = 0;
const freshIp = () => `203.0.113.${(ipCounter++ % 250) + 1}`;

async function challenge(address: string, chainId = CHAIN) {
  const res = await challengeRoute.fetch(post("/api/admin/challenge", { address, chainId }, { "x-forwarded-for": freshIp() }));
  expect(res.status).toBe(200);
  return ((await res.json()) as { message: string }).message;
}
async function signIn(message: string, signature: string) {
  const res = await sessionRoute.fetch(post("/api/admin/session", { message, signature }, { "x-forwarded-for": freshIp() }));
  return { res, body: (await res.json()) as { address?: string; expiresAt?: string; error?: { code: string; message: string } } };
}
const signedBy = async (signer: PrivateKeyAccount, address: string = signer.address) => {
  const message = await challenge(address);
  return { message, signature: await signer.signMessage({ message }) };
};
const tokenOf = (res: Response) => /__Host-tg_admin=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1] ?? "";

describe("dashboard sign-in", () => {
  it("signs an admin in with a key: a session in Redis for 8 hours, the token only in the cookie", async () => {
    const message = await challenge(admin.address);
    expect(message).toContain(`URI: ${SITE}/admin`);
    expect(message).toContain("Sign in to the group chats dashboard");
    const { res, body } = await signIn(message, await admin.signMessage({ message }));
    expect(res.status).toBe(200);
    expect(body.address).toBe(admin.address.toLowerCase());
    const token = tokenOf(res);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(body)).not.toContain(token);
    expect(await adminSession(t.app, token)).toMatchObject({ address: admin.address.toLowerCase() });
    // Stored under the token's hash, never the token itself, and it expires.
    const keys = await testRedis().keys(`${t.config.redis.keyPrefix}:admin:session:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.some((k) => k.includes(token))).toBe(false);
    const ttl = await testRedis().ttl(keys[0]!);
    expect(ttl).toBeGreaterThan(ADMIN_SESSION_TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(ADMIN_SESSION_TTL_SECONDS);
  });

  it("refuses a stranger who signed correctly (403, no cookie)", async () => {
    const stranger = privateKeyToAccount(generatePrivateKey());
    const { res, body } = await signIn(...Object.values(await signedBy(stranger)) as [string, string]);
    expect(res.status).toBe(403);
    expect(body.error?.message).toContain("is not an admin");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("refuses a replay, an edited message, someone else's signature, an expired message and a join-page message (401)", async () => {
    const { message, signature } = await signedBy(admin);
    expect((await signIn(message, signature)).res.status).toBe(200);
    expect((await signIn(message, signature)).body.error?.message).toContain("already used");

    const fresh = await signedBy(admin);
    const edited = fresh.message.replace("Sign in to the group chats dashboard", "Sign in to the dashboard");
    expect((await signIn(edited, await admin.signMessage({ message: edited }))).res.status).toBe(401);

    const other = await challenge(admin.address);
    const forged = await signIn(other, await privateKeyToAccount(generatePrivateKey()).signMessage({ message: other }));
    expect(forged.res.status).toBe(401);
    expect(forged.body.error?.message).toContain("not from");

    const late = await signedBy(admin);
    clock = Date.now() + 6 * 60_000;
    expect((await signIn(late.message, late.signature)).body.error?.message).toContain("expired");
    clock = Date.now();

    // A join page's sign-in message, signed by an admin, opens no dashboard session.
    const created = (await (await createRoute.fetch(adminPost("/api/create", { name: "Door" }))).json()) as { joinLinkId: string };
    const joinRes = await joinChallengeRoute.fetch(post("/api/join/challenge", { linkId: created.joinLinkId, address: admin.address, chainId: CHAIN }, { "x-forwarded-for": freshIp() }));
    const joinMessage = ((await joinRes.json()) as { message: string }).message;
    expect((await signIn(joinMessage, await admin.signMessage({ message: joinMessage }))).res.status).toBe(401);
  });

  it("signs in an EIP-1271 wallet on the chain its ADMIN_ADDRESSES entry names, and only there", async () => {
    const { message, signature } = await signedBy(walletOwner, contractAdmin);
    const ok = await signIn(message, signature);
    expect(ok.res.status).toBe(200);
    expect(ok.body.address).toBe(contractAdmin.toLowerCase());

    // Listed as a plain address: only its own key could sign, and a contract has none.
    const plain = await signedBy(walletOwner, plainListedContract);
    const refused = await signIn(plain.message, plain.signature);
    expect(refused.res.status).toBe(401);
    expect(refused.body.error?.message).toContain("only on the chain named in ADMIN_ADDRESSES");
  });

  it("signs in a wallet not deployed yet through its EIP-6492 signature", async () => {
    const message = await challenge(counterfactualAdmin);
    const signature = serializeErc6492Signature({
      address: factory,
      data: encodeFunctionData({ abi: chain.contracts.OwnedWalletFactory!.abi, functionName: "deploy", args: [walletOwner.address, SALT] }),
      signature: await walletOwner.signMessage({ message }),
    });
    const { res, body } = await signIn(message, signature);
    expect(res.status).toBe(200);
    expect(body.address).toBe(counterfactualAdmin.toLowerCase());
  });

  it("ends a session whose address was taken off ADMIN_ADDRESSES", async () => {
    const { res } = await signIn(...Object.values(await signedBy(admin)) as [string, string]);
    const token = tokenOf(res);
    expect(await adminSession(t.app, token)).not.toBeNull();
    expect(await adminSession({ ...t.app, config: { ...t.app.config, admins: [] } }, token)).toBeNull();
  });

  it("limits sign-in messages per network (429 with Retry-After), counted apart from the join page's", async () => {
    const ip = "192.0.2.77";
    const ask = () => challengeRoute.fetch(post("/api/admin/challenge", { address: admin.address, chainId: CHAIN }, { "x-forwarded-for": ip }));
    for (let i = 0; i < t.config.rateLimits.joinPerIp.limit; i++) expect((await ask()).status).toBe(200);
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("Too many sign-in attempts");
    // The join page's own budget from that network is untouched.
    const created = (await (await createRoute.fetch(adminPost("/api/create", { name: "Other door" }))).json()) as { joinLinkId: string };
    expect((await joinChallengeRoute.fetch(post("/api/join/challenge", { linkId: created.joinLinkId, address: admin.address, chainId: CHAIN }, { "x-forwarded-for": ip }))).status).toBe(200);
  });

  it.each([
    ["no fields", {}],
    ["a bad address", { address: "0x1234", chainId: 1 }],
    ["a chain id as text", { address: admin.address, chainId: "1" }],
    ["an unknown key", { address: admin.address, chainId: 1, admin: true }],
  ])("answers a challenge with %s with a 400 naming the problem", async (_name, body) => {
    const res = await challengeRoute.fetch(post("/api/admin/challenge", body, { "x-forwarded-for": freshIp() }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
  });

  it.each([
    ["not JSON", "{"],
    ["no signature", { message: "hello" }],
    ["a signature that is not hex", { message: "hello", signature: "0xzz" }],
    ["a message that is not a sign-in message", { message: "hello", signature: "0x1234" }],
  ])("answers a sign-in with %s with a clear 4xx JSON", async (_name, body) => {
    const res = await sessionRoute.fetch(post("/api/admin/session", body, { "x-forwarded-for": freshIp() }));
    expect([400, 401]).toContain(res.status);
    const parsed = (await res.json()) as { error: { message: string } };
    expect(parsed.error.message.length).toBeGreaterThan(5);
    expect(parsed.error.message).not.toMatch(/at .*\.ts:\d+/);
  });
});
