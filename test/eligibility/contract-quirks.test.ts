import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringToHex, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import createRoute from "../../api/create.js";
import groupRoute from "../../api/groups/[id].js";
import { setApp } from "../../lib/app.js";
import { InvalidRequestError } from "../../lib/shared/errors.js";
import { createEligibilityChecker, describeRules, EligibilitySourceError } from "../../lib/eligibility/evaluate.js";
import { createOnchainSource } from "../../lib/eligibility/onchain.js";
import { MAX_UINT256, type Erc20Rule, type Rules } from "../../lib/shared/rules.js";
import type { Address } from "../../lib/shared/address.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { freePort } from "../../local/redis/redis-server.js";
import { adminPost } from "../support/requests.js";
import { ADMIN_KEY, createTestApp, type TestApp } from "../support/test-app.js";

// What create checks, against contracts shaped like real ones (test/contracts/RealWorldTokens.sol), not the
// project's fixtures: each quirk either gets a rule people can read and meet, or a 400 naming what is wrong.
const CHAIN = 1;
let chain: LocalChain;
const c = {} as Record<
  | "mkr"
  | "zeroSymbol"
  | "nameless"
  | "oldStyle"
  | "emptySymbol"
  | "emptyBoth"
  | "controlChars"
  | "bidi"
  | "invalidUtf8"
  | "nulPadded"
  | "decimals1000"
  | "decimals77"
  | "proxyToNothing"
  | "short"
  | "brokenBalance"
  | "bare1155"
  | "bare721",
  Address
>;
let requests = 0;
const countingFetch: typeof fetch = (input, init) => {
  requests++;
  return fetch(input, init);
};

beforeAll(async () => {
  chain = await startLocalChain(CHAIN, { sources: ["RealWorldTokens.sol"] });
  const deploy = async (name: string, args: readonly unknown[] = []) => (await chain.deploy(name, args)).toLowerCase() as Address;
  const raw = (name: string, symbol: string, decimals = 18n) => deploy("RawMetadataToken", [toHex(name), toHex(symbol), decimals]);
  c.mkr = await deploy("DSTokenLike", [stringToHex("MKR", { size: 32 }), stringToHex("Maker", { size: 32 })]);
  c.zeroSymbol = await deploy("DSTokenLike", [stringToHex("", { size: 32 }), stringToHex("Sai Stablecoin v1.0", { size: 32 })]);
  c.nameless = await deploy("NamelessToken", [18]);
  c.oldStyle = await deploy("InvalidOpcodeFallbackToken");
  c.emptySymbol = await raw("Wrapped Thing", "");
  c.emptyBoth = await raw("", "   ", 6n);
  c.controlChars = await raw("\x1b[31mRED", "\x07BEL");
  c.bidi = await raw("Good Name", "US\u202eCD");
  c.invalidUtf8 = await deploy("RawMetadataToken", ["0xc3a9", "0xff00", 18n]);
  c.nulPadded = await raw("Tether USD\0\0", "USDT\0\0\0\0");
  c.decimals1000 = await raw("Big", "BIG", 1000n);
  c.decimals77 = await raw("Max", "MAX", 77n);
  c.proxyToNothing = await deploy("ProxyToNothing", ["0x000000000000000000000000000000000000bEEF"]);
  c.short = await deploy("ShortAnswers");
  c.brokenBalance = await deploy("BrokenBalanceToken");
  c.bare1155 = await deploy("BareERC1155");
  c.bare721 = await deploy("BareERC721");
}, 60_000);
afterAll(() => chain?.stop());

const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const source = (fetchFn: typeof fetch = countingFetch, timeoutMs?: number) =>
  createOnchainSource({ rpcUrls: new Map([[CHAIN, chain.url]]), fetch: fetchFn, ...(timeoutMs ? { timeoutMs } : {}) });
const short = (address: string) => `${address.slice(0, 6)}…${address.slice(-4)}`;
const erc20 = (token: Address, minBalance = "1"): Erc20Rule => ({ type: "erc20", chainId: CHAIN, token, minBalance });
const refusal = async (rules: Rules): Promise<InvalidRequestError> => {
  const error = await source().prepare(rules).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidRequestError);
  return error as InvalidRequestError;
};

describe("create reads the metadata real tokens have", () => {
  it("bytes32 symbol and name (MKR, SAI) are decoded without their zero padding; people read 'MKR' and holders pass", async () => {
    const prepared = await source().prepare(erc20(c.mkr));
    expect(prepared).toEqual({ type: "erc20", chainId: CHAIN, token: c.mkr, minBalance: "1", symbol: "MKR", decimals: 18 });
    const holder = wallet();
    await chain.write(c.mkr, "DSTokenLike", "mint", [holder, 10n ** 18n]);
    const checker = createEligibilityChecker(source());
    expect(await checker.check(prepared, holder)).toEqual({ eligible: true });
    expect(await checker.check(prepared, wallet())).toEqual({ eligible: false, reason: "Hold at least 1 MKR on Ethereum" });
  });

  it("a token without symbol() or name() (optional in EIP-20) is accepted; people read its address", async () => {
    const prepared = await source().prepare(erc20(c.nameless, "5"));
    expect(prepared).toEqual({ type: "erc20", chainId: CHAIN, token: c.nameless, minBalance: "5", decimals: 18 });
    const holder = wallet();
    await chain.write(c.nameless, "NamelessToken", "mint", [holder, 5n * 10n ** 18n]);
    const checker = createEligibilityChecker(source());
    expect(await checker.check(prepared, holder)).toEqual({ eligible: true });
    expect(await checker.check(prepared, wallet())).toEqual({ eligible: false, reason: `Hold at least 5 of token ${short(c.nameless)} on Ethereum` });
  });

  it("a pre-0.8 token whose fallback hits INVALID (an EVM error, not a revert) has no symbol: accepted, not a 503", async () => {
    expect(await source().prepare(erc20(c.oldStyle))).toEqual({ type: "erc20", chainId: CHAIN, token: c.oldStyle, minBalance: "1", decimals: 8 });
  });

  it.each([
    ["an empty symbol falls back to the name", "emptySymbol", "Wrapped Thing"],
    ["an all-zero bytes32 symbol falls back to the bytes32 name", "zeroSymbol", "Sai Stablecoin v1.0"],
    ["an empty symbol and name fall back to the address", "emptyBoth", undefined],
    ["control characters (terminal escapes, BEL) fall back to the address", "controlChars", undefined],
    ["a bidi override in the symbol falls back to the name", "bidi", "Good Name"],
    ["invalid UTF-8 in the symbol falls back to the name", "invalidUtf8", "é"],
    ["NUL padding inside a string is trimmed", "nulPadded", "USDT"],
  ] as const)("%s", async (_label, key, symbol) => {
    const prepared = await source().prepare(erc20(c[key]));
    if (symbol === undefined) expect(prepared).not.toHaveProperty("symbol");
    else expect(prepared).toMatchObject({ symbol });
    const reason = await createEligibilityChecker(source()).check(prepared, wallet());
    expect(reason).toEqual({ eligible: false, reason: `Hold at least 1 ${symbol ?? `of token ${short(c[key])}`} on Ethereum` });
  });

  it("a group stored with an empty symbol before create cleaned them: people read the address, not 'Hold at least 1  on'", () => {
    const stored: Rules = { ...erc20(c.emptySymbol), symbol: "", decimals: 18 };
    expect(describeRules(stored)).toBe(`Hold at least 1 of token ${short(c.emptySymbol)} on Ethereum`);
  });

  it("what the chain says replaces labels the operator sent, and their absence removes them", async () => {
    const sent: Rules = { ...erc20(c.nameless), symbol: "USDC", decimals: 6 };
    expect(await source().prepare(sent)).toEqual({ type: "erc20", chainId: CHAIN, token: c.nameless, minBalance: "1", decimals: 18 });
    const named: Rules = { type: "erc721", chainId: CHAIN, contract: c.bare721, minCount: 1, name: "Bored Apes" };
    expect(await source().prepare(named)).toEqual({ type: "erc721", chainId: CHAIN, contract: c.bare721, minCount: 1 });
  });
});

describe("a contract cannot make this server fetch URLs (EIP-3668 off-chain lookups are not followed)", () => {
  it("refuses, at create, a token whose reads ask for an off-chain lookup, and never calls the URL it names; a join asks nothing of it either", async () => {
    let fetched = 0;
    const trap = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: "0x" + "00".repeat(32) }));
    });
    await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = trap.address() as { port: number };
      const lookup = (await chain.deploy("OffchainLookupToken", [`http://127.0.0.1:${port}/{sender}/{data}.json`])).toLowerCase() as Address;
      const error = await refusal(erc20(lookup));
      expect(error.message).toMatch(/balanceOf\(address\) reverted/);
      const stored: Rules = { type: "erc20", chainId: CHAIN, token: lookup, minBalance: "1", decimals: 18, symbol: "LOOK" };
      await expect(createEligibilityChecker(source()).check(stored, wallet())).rejects.toBeInstanceOf(EligibilitySourceError);
      expect(fetched).toBe(0);
    } finally {
      trap.close();
    }
  });
});

describe("create refuses what no join could ever use (400 naming it, never a 503)", () => {
  it("a contract that answers every call with no data (a proxy to nothing): 400 for each rule type", async () => {
    const where = `${c.proxyToNothing} on Ethereum does not behave like`;
    expect((await refusal(erc20(c.proxyToNothing))).message).toBe(`${where} an ERC-20 token: balanceOf(address) answered no data`);
    expect((await refusal({ type: "erc721", chainId: CHAIN, contract: c.proxyToNothing, minCount: 1 })).message).toBe(
      `${where} an ERC-721 collection: balanceOf(address) answered no data`,
    );
    expect((await refusal({ type: "erc721", chainId: CHAIN, contract: c.proxyToNothing, minCount: 1, tokenId: "1" })).message).toBe(
      `${where} an ERC-721 collection: ownerOf(uint256) answered no data`,
    );
    expect((await refusal({ type: "erc1155", chainId: CHAIN, contract: c.proxyToNothing, tokenId: "1", minBalance: "1" })).message).toBe(
      `${where} an ERC-1155 contract: balanceOf(address,uint256) answered no data`,
    );
  });

  it("answers shorter than one 32-byte word: 400, and the issue carries the path of the rule", async () => {
    const error = await refusal({ any: [{ type: "open" }, erc20(c.short)] });
    expect(error.message).toMatch(/an ERC-20 token: balanceOf\(address\) answered 16 bytes, less than one 32-byte word$/);
    expect(error.issues).toEqual([{ path: "rules.any.1", message: "balanceOf(address) answered 16 bytes, less than one 32-byte word" }]);
  });

  it("a plausible ERC-20 whose balanceOf answers garbage: 400 at create (at join it would answer 'try again' forever)", async () => {
    expect((await refusal(erc20(c.brokenBalance))).message).toMatch(/an ERC-20 token: balanceOf\(address\) answered 31 bytes/);
    const stored: Rules = { ...erc20(c.brokenBalance), decimals: 18, symbol: "BRKN" };
    await expect(createEligibilityChecker(source()).check(stored, wallet())).rejects.toBeInstanceOf(EligibilitySourceError);
  });

  it("an ERC-1155 rule on an ERC-20: 400 at create (at join it would answer 'try again' forever)", async () => {
    const rule: Rules = { type: "erc1155", chainId: CHAIN, contract: c.nameless, tokenId: "1", minBalance: "1" };
    expect((await refusal(rule)).message).toBe(`${c.nameless} on Ethereum does not behave like an ERC-1155 contract: balanceOf(address,uint256) reverted`);
    await expect(createEligibilityChecker(source()).check(rule, wallet())).rejects.toBeInstanceOf(EligibilitySourceError);
  });

  it("an ERC-1155 rule on a contract failing with INVALID: 400 quoting the node's error", async () => {
    const rule: Rules = { type: "erc1155", chainId: CHAIN, contract: c.oldStyle, tokenId: "1", minBalance: "1" };
    expect((await refusal(rule)).message).toMatch(/an ERC-1155 contract: balanceOf\(address,uint256\) failed: .*InvalidFEOpcode/);
  });

  it("an ERC-721 count rule on an ERC-1155 contract (no balanceOf(address)): 400", async () => {
    expect((await refusal({ type: "erc721", chainId: CHAIN, contract: c.bare1155, minCount: 2 })).message).toMatch(
      /an ERC-721 collection: balanceOf\(address\) reverted$/,
    );
  });

  it("decimals() of 1000 is refused; 77 is the most, and then only a minBalance a uint256 can hold", async () => {
    const big = await refusal(erc20(c.decimals1000));
    expect(big.message).toMatch(/decimals\(\) is 1000; a token can have at most 77/);
    expect(await source().prepare(erc20(c.decimals77))).toMatchObject({ decimals: 77, symbol: "MAX" });
    // 2 × 10^77 base units is above 2^256 - 1 (≈ 1.16 × 10^77).
    const tooMuch = await refusal(erc20(c.decimals77, "2"));
    expect(tooMuch.message).toMatch(/minBalance 2 is more than any balance of this token can be/);
    expect(tooMuch.issues).toEqual([{ path: "rules.minBalance", message: "more than a uint256 balance can hold" }]);
  });

  it.each([
    ["an ERC-721 tokenId", { type: "erc721", chainId: CHAIN, contract: "0x" + "11".repeat(20), minCount: 1, tokenId: (MAX_UINT256 + 1n).toString() }, "rules.all.1.tokenId"],
    ["an ERC-1155 tokenId", { type: "erc1155", chainId: CHAIN, contract: "0x" + "11".repeat(20), tokenId: "9".repeat(78), minBalance: "1" }, "rules.all.1.tokenId"],
    ["an ERC-1155 minBalance", { type: "erc1155", chainId: CHAIN, contract: "0x" + "11".repeat(20), tokenId: "1", minBalance: (MAX_UINT256 + 1n).toString() }, "rules.all.1.minBalance"],
    ["sent decimals", { type: "erc20", chainId: CHAIN, token: "0x" + "11".repeat(20), minBalance: "1", decimals: 78 }, "rules.all.1.decimals"],
  ])("%s no chain can hold is refused before any read, with its path", async (_label, leaf, path) => {
    const before = requests;
    const error = await refusal({ all: [{ type: "open" }, leaf as Rules] });
    expect(error.issues.map((i) => i.path)).toEqual([path]);
    expect(requests).toBe(before);
  });

  it("the largest uint256 token id is accepted", async () => {
    const rule: Rules = { type: "erc1155", chainId: CHAIN, contract: c.bare1155, tokenId: MAX_UINT256.toString(), minBalance: MAX_UINT256.toString() };
    expect(await source().prepare(rule)).toEqual(rule);
  });
});

describe("contracts real collections are made of still pass create", () => {
  // BareERC1155 and BareERC721 revert for the zero address, as OpenZeppelin's do: the probe must not use it.
  it("ERC-1155 without ERC-165, ERC-721 without metadata, a token id nobody owns yet: accepted, in one batch", async () => {
    const before = requests;
    const prepared = await source().prepare({
      all: [
        { type: "erc1155", chainId: CHAIN, contract: c.bare1155, tokenId: "5", minBalance: "1" },
        { type: "erc721", chainId: CHAIN, contract: c.bare721, minCount: 1 },
        { type: "erc721", chainId: CHAIN, contract: c.bare721, minCount: 1, tokenId: "42" },
        erc20(c.mkr),
      ],
    });
    expect(requests - before).toBe(1);
    expect(prepared).toEqual({
      all: [
        { type: "erc1155", chainId: CHAIN, contract: c.bare1155, tokenId: "5", minBalance: "1" },
        { type: "erc721", chainId: CHAIN, contract: c.bare721, minCount: 1 },
        { type: "erc721", chainId: CHAIN, contract: c.bare721, minCount: 1, tokenId: "42" },
        { ...erc20(c.mkr), symbol: "MKR", decimals: 18 },
      ],
    });
  });
});

describe("only a chain that cannot be reached is a 503 at create", () => {
  // Forwards to anvil, then answers every eth_call of the batch with `error` (getCode still answers).
  const callsAnswered = (error: { code: number; message: string }): typeof fetch => async (input, init) => {
    const res = await fetch(input, init);
    const sent = JSON.parse(init?.body as string) as { id: number; method: string }[];
    const calls = new Set(sent.filter((r) => r.method === "eth_call").map((r) => r.id));
    const answers = (await res.json()) as { id: number }[];
    return Response.json(answers.map((a) => (calls.has(a.id) ? { jsonrpc: "2.0", id: a.id, error } : a)));
  };

  it.each([
    ["a rate limit (-32005)", { code: -32005, message: "limit exceeded" }],
    ["HTTP-less 429 in the body", { code: 429, message: "Too Many Requests" }],
    ["the node's internal error (-32603)", { code: -32603, message: "internal error" }],
    ["a lagging node behind a load balancer (-32000 'header not found')", { code: -32000, message: "header not found" }],
  ])("%s on the calls: 503", async (_label, error) => {
    await expect(source(callsAnswered(error)).prepare(erc20(c.mkr))).rejects.toBeInstanceOf(EligibilitySourceError);
  });

  it.each([
    ["a geth-style revert without data (-32000 'execution reverted')", { code: -32000, message: "execution reverted" }, /balanceOf\(address,uint256\) reverted$/],
    ["geth's INVALID opcode (-32000)", { code: -32000, message: "invalid opcode: INVALID" }, /balanceOf\(address,uint256\) failed: invalid opcode: INVALID$/],
  ])("%s is the contract's answer: 400", async (_label, rpcError, message) => {
    const rule: Rules = { type: "erc1155", chainId: CHAIN, contract: c.bare1155, tokenId: "1", minBalance: "1" };
    const error = await source(callsAnswered(rpcError)).prepare(rule).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as Error).message).toMatch(message);
  });

  it("HTTP 502, a timeout, an unreachable RPC: 503", async () => {
    const badGateway: typeof fetch = async () => new Response("bad gateway", { status: 502 });
    const hanging: typeof fetch = (_input, init) => new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason as Error)));
    await expect(source(badGateway).prepare(erc20(c.mkr))).rejects.toBeInstanceOf(EligibilitySourceError);
    await expect(source(hanging, 200).prepare(erc20(c.mkr))).rejects.toBeInstanceOf(EligibilitySourceError);
    const down = createOnchainSource({ rpcUrls: new Map([[CHAIN, `http://127.0.0.1:${await freePort()}`]]), timeoutMs: 1000 });
    await expect(down.prepare(erc20(c.mkr))).rejects.toBeInstanceOf(EligibilitySourceError);
  });
});

describe("through POST /api/create and PATCH /api/groups/<id>", () => {
  let t: TestApp;
  let down: string;
  beforeAll(async () => {
    down = `http://127.0.0.1:${await freePort()}`;
    t = createTestApp({ env: { LINK_SERVICE_URL: "", LINK_BASE_URL: "", [`RPC_URL_${CHAIN}`]: chain.url, RPC_URL_8453: down } });
    setApp(t.app);
  });
  afterAll(() => setApp(undefined));
  const create = (rules: unknown) => createRoute.fetch(adminPost("/api/create", { name: "Holders", rules }));

  it("an undecodable contract: a readable 400 JSON naming it (not a 503, never a 500), and no group", async () => {
    const res = await create({ type: "erc20", chainId: CHAIN, token: c.proxyToNothing, minBalance: "1" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        code: "invalid_request",
        message: `${c.proxyToNothing} on Ethereum does not behave like an ERC-20 token: balanceOf(address) answered no data`,
        issues: [{ path: "rules", message: "balanceOf(address) answered no data" }],
      },
    });
    expect(t.network.sessions).toBe(0);
  });

  // Rules as functions: the contracts are deployed after the table is built.
  it.each([
    ["decimals() of 1000", () => ({ type: "erc20", chainId: CHAIN, token: c.decimals1000, minBalance: "1" }), /decimals\(\) is 1000/],
    ["an ERC-1155 rule on an ERC-20", () => ({ type: "erc1155", chainId: CHAIN, contract: c.nameless, tokenId: "1" }), /ERC-1155 contract: balanceOf\(address,uint256\) reverted/],
    [
      "a tokenId above uint256",
      () => ({ all: [{ type: "erc721", chainId: CHAIN, contract: c.bare721, tokenId: (MAX_UINT256 + 1n).toString() }] }),
      /rules\.all\.0\.tokenId: tokenId must be at most 2\^256 - 1/,
    ],
  ])("%s: 400", async (_label, rules, message) => {
    const res = await create(rules());
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.message).toMatch(message);
  });

  it("an RPC that cannot be reached is still a 503 'try again'", async () => {
    const res = await create({ type: "erc20", chainId: 8453, token: c.mkr, minBalance: "1" });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: "unavailable" } });
  });

  it("MKR: 201 with the symbol stored; PATCH to a token without symbol() stores none, PATCH to a silent proxy is a 400", async () => {
    const res = await create({ type: "erc20", chainId: CHAIN, token: c.mkr, minBalance: "1" });
    expect(res.status).toBe(201);
    const { groupId, rules } = (await res.json()) as { groupId: string; rules: unknown };
    expect(rules).toEqual({ type: "erc20", chainId: CHAIN, token: c.mkr, minBalance: "1", symbol: "MKR", decimals: 18 });
    const patch = (body: unknown) =>
      groupRoute.fetch(
        new Request(`https://gated.example.test/api/groups/${groupId}`, {
          method: "PATCH",
          headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
      );
    const nameless = await patch({ rules: { type: "erc20", chainId: CHAIN, token: c.nameless, minBalance: "1", symbol: "MKR" } });
    expect(nameless.status).toBe(200);
    expect((await t.app.registry.get(groupId))?.rules).toEqual({ type: "erc20", chainId: CHAIN, token: c.nameless, minBalance: "1", decimals: 18 });
    const silent = await patch({ rules: { type: "erc20", chainId: CHAIN, token: c.proxyToNothing, minBalance: "1" } });
    expect(silent.status).toBe(400);
    expect((await t.app.registry.get(groupId))?.rules).toMatchObject({ token: c.nameless });
  });
});
