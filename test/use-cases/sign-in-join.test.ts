import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, encodeFunctionData, getAddress, http, serializeErc6492Signature, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { createSiweMessage, parseSiweMessage } from "viem/siwe";
import createRoute from "../../api/create.js";
import joinLinkRoute from "../../api/groups/[id]/join-link.js";
import groupRoute from "../../api/groups/[id].js";
import joinPageRoute from "../../api/join-page.js";
import challengeRoute from "../../api/join/challenge.js";
import joinRoute from "../../api/join/index.js";
import { setApp } from "../../lib/app.js";
import type { Rules } from "../../lib/shared/rules.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { adminPost, post } from "../support/requests.js";
import { ADMIN_KEY, createTestApp, type TestApp } from "../support/test-app.js";

// The join page's server side: real Redis (bridge), real anvil for smart-contract wallets, XMTP double.
const CHAIN = 31337;
const SITE = "https://gated.example.test";
let chain: LocalChain;
let t: TestApp;
let clock = Date.now();

beforeAll(async () => {
  chain = await startLocalChain(CHAIN);
  t = createTestApp({
    // No link service: the group's own link is the only way in.
    env: { LINK_SERVICE_URL: "", LINK_BASE_URL: "", [`RPC_URL_${CHAIN}`]: chain.url, RPC_URL_999: "http://127.0.0.1:9" },
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
// Each test speaks from its own address, so the per-IP limit (60/min) is not what a test measures by accident.
const freshIp = () => `198.51.100.${(ipCounter++ % 250) + 1}`;
const account = () => privateKeyToAccount(generatePrivateKey());

async function createGroup(body: Record<string, unknown> = {}): Promise<{ groupId: string; linkId: string; joinUrl: string }> {
  const res = await createRoute.fetch(adminPost("/api/create", { name: "Holders", description: "For holders", ...body }));
  expect(res.status).toBe(201);
  const created = (await res.json()) as { groupId: string; joinLinkId: string; joinUrl: string; url: string };
  return { groupId: created.groupId, linkId: created.joinLinkId, joinUrl: created.joinUrl };
}

async function requestChallenge(linkId: string, address: string, options: { chainId?: number; ip?: string } = {}) {
  const res = await challengeRoute.fetch(post("/api/join/challenge", { linkId, address, chainId: options.chainId ?? CHAIN }, { "x-forwarded-for": options.ip ?? freshIp() }));
  return { res, body: (await res.json()) as { message: string; expiresAt: string; error?: { message: string } } };
}

async function submit(message: string, signature: string, ip = freshIp()) {
  const res = await joinRoute.fetch(post("/api/join", { message, signature }, { "x-forwarded-for": ip }));
  return { res, body: (await res.json()) as { status?: string; reason?: string; groupId?: string; openUrl?: string; error?: { code: string; message: string } } };
}

async function signedMessage(linkId: string, signer: PrivateKeyAccount, address: string = signer.address, chainId = CHAIN) {
  const { res, body } = await requestChallenge(linkId, address, { chainId });
  expect(res.status).toBe(200);
  return { message: body.message, signature: await signer.signMessage({ message: body.message }) };
}

describe("POST /api/create without a link service", () => {
  it("answers the group's own join link as joinUrl and url, registering nothing", async () => {
    const res = await createRoute.fetch(adminPost("/api/create", { name: "Own link" }));
    const body = (await res.json()) as Record<string, string>;
    expect(res.status).toBe(201);
    expect(body.joinLinkId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body.joinUrl).toBe(`${SITE}/join/${body.joinLinkId}`);
    expect(body.url).toBe(body.joinUrl);
    expect(body).not.toHaveProperty("groupLinkId");
    const stored = await t.app.registry.get(body.groupId!);
    expect(stored).toMatchObject({ state: "active", linkId: null });
  });
});

describe("sign in with Ethereum and join", () => {
  it("composes an EIP-4361 message for this site, then joins an EOA that signs it", async () => {
    const { groupId, linkId } = await createGroup({ name: "Holders <3" });
    const person = account();
    t.network.register(person.address);

    const { body } = await requestChallenge(linkId, person.address.toLowerCase());
    const fields = parseSiweMessage(body.message);
    expect(fields).toMatchObject({ domain: "gated.example.test", address: person.address, uri: `${SITE}/join/${linkId}`, version: "1", chainId: CHAIN });
    expect(fields.statement).toContain('"Holders <3"');
    expect(fields.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(fields.expirationTime!.getTime() - fields.issuedAt!.getTime()).toBe(300_000);
    expect(body.expiresAt).toBe(fields.expirationTime!.toISOString());

    const { res, body: result } = await submit(body.message, await person.signMessage({ message: body.message }));
    expect(res.status).toBe(200);
    expect(result).toEqual({ status: "SUCCESS", groupId, openUrl: `https://xmtp.chat/conversations/${groupId}` });
    expect(t.network.memberAddresses(groupId)).toContain(person.address.toLowerCase());
    const audit = await t.app.audit.list(groupId, { offset: 0, limit: 5 });
    expect(audit.entries[0]).toMatchObject({ source: "join-page", action: "join", address: person.address.toLowerCase(), outcome: "added" });
    expect((await t.app.members.list(groupId)).find((m) => m.address === person.address.toLowerCase())?.via).toBe("join-page");
  });

  it("refuses a replayed message (nonce already used) with 401", async () => {
    const { linkId } = await createGroup();
    const person = account();
    t.network.register(person.address);
    const signed = await signedMessage(linkId, person);
    expect((await submit(signed.message, signed.signature)).body.status).toBe("SUCCESS");
    const replay = await submit(signed.message, signed.signature);
    expect(replay.res.status).toBe(401);
    expect(replay.body.error?.message).toMatch(/already used/);
  });

  it("lets exactly one of two racing submissions of the same signature through", async () => {
    const { linkId } = await createGroup();
    const person = account();
    t.network.register(person.address);
    const signed = await signedMessage(linkId, person);
    const results = await Promise.all([submit(signed.message, signed.signature), submit(signed.message, signed.signature)]);
    expect(results.map((r) => r.res.status).sort()).toEqual([200, 401]);
  });

  it("refuses an expired message with 401", async () => {
    const { linkId } = await createGroup();
    const person = account();
    t.network.register(person.address);
    const signed = await signedMessage(linkId, person);
    clock += 300_001;
    const { res, body } = await submit(signed.message, signed.signature);
    expect(res.status).toBe(401);
    expect(body.error?.message).toMatch(/expired/);
  });

  it("refuses a message for another domain, signed by the right key, with 401", async () => {
    const { linkId } = await createGroup();
    const person = account();
    const { body } = await requestChallenge(linkId, person.address);
    const phished = body.message.replace(/^gated\.example\.test /, "evil.example ");
    expect(phished).not.toBe(body.message);
    const { res, body: result } = await submit(phished, await person.signMessage({ message: phished }));
    expect(res.status).toBe(401);
    expect(result.error?.message).toMatch(/another site/);
  });

  it("refuses a well-formed message this site never issued, and one altered after issue, with 401", async () => {
    const { linkId } = await createGroup();
    const person = account();
    t.network.register(person.address);
    const forged = createSiweMessage({
      domain: "gated.example.test",
      address: person.address,
      uri: `${SITE}/join/${linkId}`,
      version: "1",
      chainId: CHAIN,
      nonce: "0123456789abcdef0123456789abcdef",
      issuedAt: new Date(clock),
      expirationTime: new Date(clock + 60_000),
    });
    const own = await submit(forged, await person.signMessage({ message: forged }));
    expect(own.res.status).toBe(401);
    expect(own.body.error?.message).toMatch(/not issued here/);

    const { body } = await requestChallenge(linkId, person.address);
    const altered = body.message.replace(/Chain ID: \d+/, "Chain ID: 1");
    const changed = await submit(altered, await person.signMessage({ message: altered }));
    expect(changed.res.status).toBe(401);
    expect(changed.body.error?.message).toMatch(/not issued here/);
    // The untouched message still works: a tampered copy does not burn the nonce.
    expect((await submit(body.message, await person.signMessage({ message: body.message }))).body.status).toBe("SUCCESS");
  });

  it("refuses a signature made by another key with 401, and the rightful signature still works after", async () => {
    const { linkId } = await createGroup();
    const person = account();
    const thief = account();
    t.network.register(person.address);
    const { body } = await requestChallenge(linkId, person.address);
    const wrong = await submit(body.message, await thief.signMessage({ message: body.message }));
    expect(wrong.res.status).toBe(401);
    expect(wrong.body.error?.message).toContain(`not from ${person.address}`);
    expect((await submit(body.message, await person.signMessage({ message: body.message }))).body.status).toBe("SUCCESS");
  });

  it("denies with the rule's reason, audited as a join-page decision", async () => {
    const allowed = account();
    const { groupId, linkId } = await createGroup({ rules: { type: "allowlist", addresses: [allowed.address] } satisfies Rules });
    const person = account();
    t.network.register(person.address);
    const signed = await signedMessage(linkId, person);
    const { res, body } = await submit(signed.message, signed.signature);
    expect(res.status).toBe(200);
    expect(body).toEqual({ status: "DENIED", reason: "This wallet is not on the group's allowlist" });
    expect(t.network.memberAddresses(groupId)).not.toContain(person.address.toLowerCase());
    expect((await t.app.audit.list(groupId, { offset: 0, limit: 1 })).entries[0]).toMatchObject({ source: "join-page", outcome: "denied" });
  });

  it("tells a wallet without an XMTP inbox to open an XMTP app first", async () => {
    const { linkId } = await createGroup();
    const person = account();
    const signed = await signedMessage(linkId, person);
    const { body } = await submit(signed.message, signed.signature);
    expect(body.status).toBe("DENIED");
    expect(body.reason).toMatch(/XMTP/);
  });

  it("answers 503 with Retry-After when XMTP is down, and the person can start again later", async () => {
    const { linkId } = await createGroup();
    const person = account();
    t.network.register(person.address);
    const signed = await signedMessage(linkId, person);
    t.network.down = true;
    try {
      const { res, body } = await submit(signed.message, signed.signature);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect(JSON.stringify(body)).not.toMatch(/stack|at \//);
    } finally {
      t.network.down = false;
    }
    const again = await signedMessage(linkId, person);
    expect((await submit(again.message, again.signature)).body.status).toBe("SUCCESS");
  });
});

describe("smart-contract wallets on the local chain", () => {
  it("joins an EIP-1271 wallet whose owner signed, and refuses a signature its contract rejects", async () => {
    const { groupId, linkId } = await createGroup();
    const owner = account();
    const wallet = await chain.deploy("OwnedWallet", [owner.address]);
    t.network.register(wallet);

    const { body } = await requestChallenge(linkId, wallet);
    const byStranger = await submit(body.message, await account().signMessage({ message: body.message }));
    expect(byStranger.res.status).toBe(401);

    const byOwner = await submit(body.message, await owner.signMessage({ message: body.message }));
    expect(byOwner.body).toMatchObject({ status: "SUCCESS", groupId });
    expect(t.network.memberAddresses(groupId)).toContain(wallet.toLowerCase());
  });

  it("refuses every signature for a wallet contract that approves none", async () => {
    const { linkId } = await createGroup();
    const refusing = await chain.deploy("RefusingWallet");
    t.network.register(refusing);
    const { body } = await requestChallenge(linkId, refusing);
    const { res, body: result } = await submit(body.message, await account().signMessage({ message: body.message }));
    expect(res.status).toBe(401);
    expect(result.error?.message).toContain(`not from ${getAddress(refusing)}`);
  });

  it("joins a wallet that is not deployed yet through its EIP-6492 signature", async () => {
    const { groupId, linkId } = await createGroup();
    const owner = account();
    const factory = await chain.deploy("OwnedWalletFactory");
    const salt = `0x${"07".repeat(32)}`;
    const factoryAbi = chain.contracts.OwnedWalletFactory!.abi;
    const rpc = createPublicClient({ transport: http(chain.url) });
    const counterfactual = (await rpc.readContract({ address: factory, abi: factoryAbi, functionName: "addressOf", args: [owner.address, salt] })) as Address;
    expect(await rpc.getCode({ address: counterfactual })).toBeUndefined();
    t.network.register(counterfactual);

    const { body } = await requestChallenge(linkId, counterfactual);
    const inner = await owner.signMessage({ message: body.message });
    const signature = serializeErc6492Signature({
      address: factory,
      data: encodeFunctionData({ abi: factoryAbi, functionName: "deploy", args: [owner.address, salt] }),
      signature: inner,
    });
    const { body: result } = await submit(body.message, signature);
    expect(result).toMatchObject({ status: "SUCCESS", groupId });
    // Checked in an eth_call: nothing was deployed for real.
    expect(await rpc.getCode({ address: counterfactual })).toBeUndefined();
  });

  it("says it cannot check a contract wallet on a chain without an RPC (401), and answers 503 when the RPC is down", async () => {
    const { linkId } = await createGroup();
    const owner = account();
    const wallet = await chain.deploy("OwnedWallet", [owner.address]);
    const noRpc = await signedMessage(linkId, owner, wallet, 5);
    const unknownChain = await submit(noRpc.message, noRpc.signature);
    expect(unknownChain.res.status).toBe(401);
    expect(unknownChain.body.error?.message).toMatch(/cannot check/);

    const deadRpc = await signedMessage(linkId, owner, wallet, 999);
    const down = await submit(deadRpc.message, deadRpc.signature);
    expect(down.res.status).toBe(503);
    // The nonce was not used: the same signature goes through once the chain answers again (here: never, so still 503).
    expect((await submit(deadRpc.message, deadRpc.signature)).res.status).toBe(503);
  });
});

describe("bad input", () => {
  it.each([
    ["no body fields", {}],
    ["a bad address", { linkId: "a".repeat(22), address: "0x1234", chainId: 1 }],
    ["a chain id as text", { linkId: "a".repeat(22), address: account().address, chainId: "1" }],
    ["an unknown key", { linkId: "a".repeat(22), address: account().address, chainId: 1, admin: true }],
    ["a malformed link id", { linkId: "../../etc", address: account().address, chainId: 1 }],
  ])("challenge with %s → 400 with a readable error", async (_name, body) => {
    const res = await challengeRoute.fetch(post("/api/join/challenge", body, { "x-forwarded-for": freshIp() }));
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe("invalid_request");
    expect(json.error.message).toMatch(/^Invalid request/);
  });

  it("challenge for an unknown link → 404", async () => {
    const { res, body } = await requestChallenge("A".repeat(22), account().address);
    expect(res.status).toBe(404);
    expect(body.error?.message).toBe("This group link is not active");
  });

  it("join with a non-hex signature → 400; with text that is no sign-in message → 401; non-JSON → 400", async () => {
    expect((await submit("hello", "0xzz")).res.status).toBe(400);
    const notSiwe = await submit("hello", `0x${"11".repeat(65)}`);
    expect(notSiwe.res.status).toBe(401);
    expect(notSiwe.body.error?.message).toMatch(/not a sign-in message/);
    const raw = await joinRoute.fetch(post("/api/join", "{nope", { "x-forwarded-for": freshIp() }));
    expect(raw.status).toBe(400);
  });

  it("GET on the JSON endpoints → 405 with Allow", async () => {
    const res = await joinRoute.fetch(new Request(`${SITE}/api/join`));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });
});

describe("the join page", () => {
  const page = (linkId: string) => joinPageRoute.fetch(new Request(`${SITE}/api/join-page?linkId=${encodeURIComponent(linkId)}`));

  it("shows name, description and requirements, escaped, under a strict CSP with no inline script", async () => {
    const { linkId } = await createGroup({
      name: `<script>alert(1)</script>`,
      description: `Bring "friends" & tokens`,
      rules: { any: [{ type: "allowlist", addresses: [account().address] }, { type: "open" }] },
    });
    const res = await page(linkId);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>");
    expect(html).toContain("Bring &quot;friends&quot; &amp; tokens");
    expect(html).toContain("To join, you need one of:");
    expect(html).toContain("<li>Be on the group&#39;s allowlist</li>");
    expect(html).toContain("Connect wallet and join");
    expect(html).toContain(`data-link-id="${linkId}"`);
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
  });

  it("says 'at least N of' for an atLeast rule, and words a `not` rule plainly", async () => {
    const { linkId } = await createGroup({
      rules: { atLeast: 2, of: [{ type: "allowlist", addresses: [account().address] }, { type: "open" }, { not: { type: "allowlist", addresses: [account().address] } }] },
    });
    const html = await (await page(linkId)).text();
    expect(html).toContain("To join, you need at least 2 of:");
    expect(html).toContain("<li>Do not be on the group&#39;s allowlist</li>");
  });

  it("takes the link id from the original /join/<id> path as well", async () => {
    const { linkId } = await createGroup({ name: "Path" });
    const res = await joinPageRoute.fetch(new Request(`${SITE}/join/${linkId}`));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("<h1>Path</h1>");
  });

  it("answers a friendly 404 page for an unknown or malformed link", async () => {
    for (const id of ["B".repeat(22), "nope", ""]) {
      const res = await page(id);
      expect(res.status).toBe(404);
      const html = await res.text();
      expect(html).toContain("This link doesn't work");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    }
  });

  it("follows the operator: a rotated link 404s at once, a disabled one too, and enabling brings it back", async () => {
    const { groupId, linkId } = await createGroup();
    const manage = (action: string) => joinLinkRoute.fetch(adminPost(`/api/groups/${groupId}/join-link`, { action }));

    const rotated = (await (await manage("rotate")).json()) as { joinLinkId: string; joinUrl: string; joinLinkEnabled: boolean };
    expect(rotated.joinLinkId).not.toBe(linkId);
    expect(rotated.joinUrl).toBe(`${SITE}/join/${rotated.joinLinkId}`);
    expect((await page(linkId)).status).toBe(404);
    expect((await page(rotated.joinLinkId)).status).toBe(200);

    // A message issued before the link was turned off cannot be used after.
    const person = account();
    t.network.register(person.address);
    const signed = await signedMessage(rotated.joinLinkId, person);
    expect(((await (await manage("disable")).json()) as { joinLinkEnabled: boolean }).joinLinkEnabled).toBe(false);
    expect((await page(rotated.joinLinkId)).status).toBe(404);
    expect((await requestChallenge(rotated.joinLinkId, person.address)).res.status).toBe(404);
    expect((await submit(signed.message, signed.signature)).body).toEqual({ status: "DENIED", reason: "This group link is not active" });

    await manage("enable");
    expect((await page(rotated.joinLinkId)).status).toBe(200);
    expect((await joinLinkRoute.fetch(adminPost(`/api/groups/${groupId}/join-link`, { action: "delete" }))).status).toBe(400);
    expect((await joinLinkRoute.fetch(post(`/api/groups/${groupId}/join-link`, { action: "rotate" }))).status).toBe(401);
  });

  it("gives a group made before join links existed its link the first time the operator looks", async () => {
    const info = await t.app.xmtp.withSession((s) => s.createGroup({ name: "Old", description: "" }));
    await t.app.registry.insertPending({ groupId: info.groupId, name: "Old", description: "", rules: { type: "open" } });
    await t.app.registry.activate(info.groupId, null);
    const show = async () =>
      (await (
        await groupRoute.fetch(new Request(`${SITE}/api/groups/${info.groupId}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }))
      ).json()) as { joinLinkId: string; joinUrl: string };
    const first = await show();
    expect(first.joinLinkId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect((await show()).joinLinkId).toBe(first.joinLinkId);
    expect((await page(first.joinLinkId)).status).toBe(200);
  });
});

describe("abuse limits", () => {
  let limited: TestApp;
  beforeAll(() => {
    limited = createTestApp({
      env: { LINK_SERVICE_URL: "", LINK_BASE_URL: "", JOIN_RATE_LIMIT_PER_IP: "3/60", JOIN_RATE_LIMIT_PER_ADDRESS: "2/60" },
    });
    setApp(limited.app);
  });
  afterAll(() => setApp(t.app));

  it("limits challenges per IP, and per address from one network, with 429 and Retry-After", async () => {
    const { linkId } = await createGroup();
    const ip = freshIp();
    for (let i = 0; i < 3; i++) expect((await requestChallenge(linkId, account().address, { ip })).res.status).toBe(200);
    const overIp = await requestChallenge(linkId, account().address, { ip });
    expect(overIp.res.status).toBe(429);
    expect(Number(overIp.res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(overIp.body.error?.message).toMatch(/this network/);

    const person = account();
    const home = freshIp();
    for (let i = 0; i < 2; i++) expect((await requestChallenge(linkId, person.address, { ip: home })).res.status).toBe(200);
    const overAddress = await requestChallenge(linkId, person.address, { ip: home });
    expect(overAddress.res.status).toBe(429);
    expect(overAddress.body.error?.message).toMatch(/this wallet/);
    // Counted with the network: the same wallet from elsewhere still gets its message.
    expect((await requestChallenge(linkId, person.address, { ip: freshIp() })).res.status).toBe(200);
  });

  it("limits join submissions per IP, and per address once the signature proved it, with 429", async () => {
    const { linkId } = await createGroup();
    const person = account();
    limited.network.register(person.address);
    for (let i = 0; i < 2; i++) {
      const signed = await signedMessage(linkId, person);
      expect((await submit(signed.message, signed.signature)).body.status).toBe("SUCCESS");
    }
    const third = await signedMessage(linkId, person);
    const overAddress = await submit(third.message, third.signature);
    expect(overAddress.res.status).toBe(429);
    expect(overAddress.body.error?.message).toMatch(/this wallet/);
    const ip = freshIp();
    const garbage = `0x${"11".repeat(65)}`;
    for (let i = 0; i < 3; i++) await submit("not a message", garbage, ip);
    const overIp = await submit("not a message", garbage, ip);
    expect(overIp.res.status).toBe(429);
    expect(overIp.body.error?.message).toMatch(/this network/);
  });
});
