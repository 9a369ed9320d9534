import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AIRSTACK_URL, createAirstackSource } from "../../lib/eligibility/airstack.js";
import { createEligibilityChecker, EligibilitySourceError } from "../../lib/eligibility/evaluate.js";
import type { Rules } from "../../lib/shared/rules.js";
import type { Address } from "../../lib/shared/address.js";

// Airstack faked at its HTTP boundary with the documented response shapes.
const seen: { authorization: string | null; body: { query: string; variables: Record<string, unknown> } }[] = [];
let reply: (body: { query: string; variables: Record<string, unknown> }) => Response = () => HttpResponse.json({ data: {} });
const server = setupServer(
  http.post(AIRSTACK_URL, async ({ request }) => {
    const body = (await request.json()) as { query: string; variables: Record<string, unknown> };
    seen.push({ authorization: request.headers.get("authorization"), body });
    return reply(body);
  }),
);
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => (seen.length = 0));
afterAll(() => server.close());

const owner = "0x" + "11".repeat(20) as Address;
const token = "0x" + "22".repeat(20) as Address;
const checker = createEligibilityChecker(createAirstackSource({ apiKey: "airstack-key" }));
const balances = (rows: unknown[] | null) => HttpResponse.json({ data: { TokenBalances: { TokenBalance: rows } } });

describe("Airstack holdings source", () => {
  it("sends the documented TokenBalances query with the key in Authorization, and compares base units", async () => {
    reply = () => balances([{ amount: "100000000", formattedAmount: 100, tokenId: "0", tokenAddress: token, tokenType: "ERC20", token: { decimals: 6 } }]);
    const rule: Rules = { type: "erc20", chainId: 8453, token, minBalance: "100", decimals: 6 };
    expect(await checker.check(rule, owner)).toEqual({ eligible: true });
    expect(seen[0]?.authorization).toBe("airstack-key");
    expect(seen[0]?.body.query).toMatch(/TokenBalances\(input: \{filter: \{owner: \{_eq: \$owner\}, tokenAddress: \{_eq: \$tokenAddress\}, tokenType: \{_in: \$tokenType\}\}, blockchain: \$blockchain/);
    expect(seen[0]?.body.variables).toEqual({ owner, tokenAddress: token, tokenType: ["ERC20"], blockchain: "base" });
    reply = () => balances([{ amount: "99999999", formattedAmount: 99.999999, tokenId: "0", tokenAddress: token, tokenType: "ERC20", token: { decimals: 6 } }]);
    expect((await checker.check(rule, owner)).eligible).toBe(false);
  });

  it("treats an empty result (TokenBalance: null) as holding nothing", async () => {
    reply = () => balances(null);
    expect(await checker.check({ type: "erc721", chainId: 1, contract: token, minCount: 1 }, owner)).toEqual({
      eligible: false,
      reason: "Hold at least 1 NFT from 0x2222…2222 on Ethereum",
    });
  });

  it("counts ERC-721 tokens and matches a token id; sums ERC-1155 balances of the id", async () => {
    reply = () => balances([{ amount: "1", tokenId: "7" }, { amount: "1", tokenId: "9" }]);
    expect((await checker.check({ type: "erc721", chainId: 1, contract: token, minCount: 2 }, owner)).eligible).toBe(true);
    expect((await checker.check({ type: "erc721", chainId: 1, contract: token, minCount: 1, tokenId: "9" }, owner)).eligible).toBe(true);
    expect((await checker.check({ type: "erc721", chainId: 1, contract: token, minCount: 1, tokenId: "8" }, owner)).eligible).toBe(false);
    reply = () => balances([{ amount: "2", tokenId: "5" }, { amount: "4", tokenId: "6" }]);
    expect((await checker.check({ type: "erc1155", chainId: 137, contract: token, tokenId: "5", minBalance: "3" }, owner)).eligible).toBe(false);
  });

  it("queries Poaps by event id and owner", async () => {
    reply = (body) => HttpResponse.json({ data: { Poaps: { Poap: body.variables.eventId === "141910" ? [{ eventId: "141910", tokenId: "1" }] : null } } });
    expect(await checker.check({ type: "poap", eventId: 141910 }, owner)).toEqual({ eligible: true });
    expect(await checker.check({ type: "poap", eventId: 5 }, owner)).toEqual({ eligible: false, reason: "Hold the POAP of event #5" });
    expect(seen[0]?.body.query).toMatch(/Poaps\(input: \{filter: \{owner: \{_eq: \$owner\}, eventId: \{_eq: \$eventId\}\}/);
  });

  it.each([
    ["GraphQL errors", () => HttpResponse.json({ data: null, errors: [{ message: "Invalid API key" }] })],
    ["HTTP 429", () => HttpResponse.json({ message: "rate limited" }, { status: 429 })],
    ["an unexpected shape", () => HttpResponse.json({ data: { TokenBalances: { TokenBalance: [{ nope: 1 }] } } })],
    ["a network error", () => HttpResponse.error()],
  ])("%s are source errors, not denials", async (_label, fail) => {
    reply = fail;
    await expect(checker.check({ type: "erc20", chainId: 1, token, minBalance: "1", decimals: 18 }, owner)).rejects.toBeInstanceOf(EligibilitySourceError);
  });

  it("refuses at create a chain Airstack does not serve", async () => {
    await expect(createAirstackSource({ apiKey: "k" }).prepare({ type: "erc20", chainId: 100, token, minBalance: "1" })).rejects.toThrow(/Airstack does not serve Gnosis/);
  });

  it("refuses at create values no chain holds, as the on-chain source does (without asking Airstack)", async () => {
    const source = createAirstackSource({ apiKey: "k" });
    const prepare = (rules: Rules) => source.prepare(rules);
    await expect(prepare({ type: "erc1155", chainId: 1, contract: token, tokenId: (2n ** 256n).toString(), minBalance: "1" })).rejects.toThrow(/rules\.tokenId: tokenId must be at most 2\^256 - 1/);
    await expect(prepare({ type: "erc20", chainId: 1, token, minBalance: "1", decimals: 1000 })).rejects.toThrow(/rules\.decimals: decimals must be a whole number from 0 to 77/);
    expect(seen).toEqual([]);
  });
});
