import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as v from "valibot";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Address as ViemAddress } from "viem";
import { createEligibilityChecker, describeRules, MAX_WALLETS } from "../../lib/eligibility/evaluate.js";
import { contractWalletChains } from "../../lib/eligibility/contract-wallet-chains.js";
import { createOnchainSource, POAP_CONTRACT } from "../../lib/eligibility/onchain.js";
import { MAX_TOKEN_ID_RANGE, RulesSchema, type Rules } from "../../lib/shared/rules.js";
import { InvalidRequestError } from "../../lib/shared/errors.js";
import type { Address } from "../../lib/shared/address.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";

let chain: LocalChain;
let usdc: Address;
let nft: Address;
let rival: Address;
let multi: Address;
let requests = 0;
const countingFetch: typeof fetch = (input, init) => {
  requests++;
  return fetch(input, init);
};

const lower = (a: ViemAddress) => a.toLowerCase() as Address;
beforeAll(async () => {
  chain = await startLocalChain(100);
  usdc = lower(await chain.deploy("TestERC20", ["USD Coin", "USDC", 6]));
  nft = lower(await chain.deploy("TestERC721", ["Cool Cats"]));
  rival = lower(await chain.deploy("TestERC721", ["Rival Dogs"]));
  multi = lower(await chain.deploy("TestERC1155"));
  await chain.placeAt(POAP_CONTRACT, "TestPoap");
}, 60_000);
afterAll(() => chain?.stop());

const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const person = (n: number) => Array.from({ length: n }, wallet);
const source = () => createOnchainSource({ rpcUrls: new Map([[100, chain.url]]), fetch: countingFetch });
const check = async (rules: Rules, wallets: Address | readonly Address[]) => createEligibilityChecker(source()).check(await source().prepare(rules), wallets);

describe("a person's wallets taken together (anvil)", () => {
  it("ERC-20 balances are summed across wallets; the reason says how many wallets were counted", async () => {
    const [a, b, c] = person(3);
    await chain.write(usdc, "TestERC20", "mint", [a!, 60_000_000n]);
    await chain.write(usdc, "TestERC20", "mint", [b!, 40_000_000n]);
    const rule: Rules = { type: "erc20", chainId: 100, token: usdc, minBalance: "100" };
    expect(await check(rule, [a!, b!])).toEqual({ eligible: true });
    expect(await check(rule, a!)).toEqual({ eligible: false, reason: "Hold at least 100 USDC on Gnosis" });
    expect(await check({ ...rule, minBalance: "100.000001" }, [a!, b!, c!])).toEqual({
      eligible: false,
      reason: "Hold at least 100.000001 USDC on Gnosis (counted across your 3 wallets)",
    });
  });

  it("ERC-721 counts are summed, and a token id held by any wallet counts", async () => {
    const [a, b] = person(2);
    await chain.write(nft, "TestERC721", "mint", [a!, 101n]);
    await chain.write(nft, "TestERC721", "mint", [b!, 102n]);
    expect(await check({ type: "erc721", chainId: 100, contract: nft, minCount: 2 }, [a!, b!])).toEqual({ eligible: true });
    expect((await check({ type: "erc721", chainId: 100, contract: nft, minCount: 2 }, [a!])).eligible).toBe(false);
    expect(await check({ type: "erc721", chainId: 100, contract: nft, minCount: 1, tokenId: "102" }, [a!, b!])).toEqual({ eligible: true });
    expect((await check({ type: "erc721", chainId: 100, contract: nft, minCount: 1, tokenId: "102" }, [a!])).eligible).toBe(false);
  });

  it("ERC-1155 balances are summed across wallets; a POAP or an allowlist is met by any wallet", async () => {
    const [a, b] = person(2);
    await chain.write(multi, "TestERC1155", "mint", [a!, 9n, 2n]);
    await chain.write(multi, "TestERC1155", "mint", [b!, 9n, 1n]);
    await chain.write(POAP_CONTRACT, "TestPoap", "mint", [b!, 5150n]);
    expect(await check({ type: "erc1155", chainId: 100, contract: multi, tokenId: "9", minBalance: "3" }, [a!, b!])).toEqual({ eligible: true });
    expect((await check({ type: "erc1155", chainId: 100, contract: multi, tokenId: "9", minBalance: "3" }, [a!])).eligible).toBe(false);
    expect(await check({ type: "poap", eventId: 5150 }, [a!, b!])).toEqual({ eligible: true });
    expect(await check({ type: "allowlist", addresses: [b!] }, [a!, b!])).toEqual({ eligible: true });
    expect(await check({ type: "allowlist", addresses: [wallet()] }, [a!, b!])).toEqual({ eligible: false, reason: "None of your 2 wallets is on the group's allowlist" });
  });

  it("a `not` rule fails when a rival token sits on any one of the wallets", async () => {
    const [a, b] = person(2);
    await chain.write(usdc, "TestERC20", "mint", [a!, 1_000_000n]);
    await chain.write(rival, "TestERC721", "mint", [b!, 1n]);
    const rules: Rules = { all: [{ type: "erc20", chainId: 100, token: usdc, minBalance: "1" }, { not: { type: "erc721", chainId: 100, contract: rival, minCount: 1 } }] };
    expect(await check(rules, [a!])).toEqual({ eligible: true });
    expect(await check(rules, [a!, b!])).toEqual({ eligible: false, reason: "Do not hold at least 1 Rival Dogs NFT on Gnosis (counted across your 2 wallets)" });
  });

  it(`counts at most ${MAX_WALLETS} wallets, all of them read in one JSON-RPC batch`, async () => {
    const wallets = person(12);
    await chain.write(usdc, "TestERC20", "mint", [wallets[9]!, 1_000_000n]);
    await chain.write(usdc, "TestERC20", "mint", [wallets[10]!, 1_000_000n]);
    const src = source();
    const rules = await src.prepare({ all: [{ type: "erc20", chainId: 100, token: usdc, minBalance: "1" }, { type: "erc721", chainId: 100, contract: nft, minCount: 1 }, { type: "poap", eventId: 1 }] });
    const before = requests;
    const answer = await createEligibilityChecker(src).check(rules, wallets);
    expect(requests - before).toBe(1);
    // wallets[9] is the tenth and counted; its USDC passes the first rule, the NFT rule then fails.
    expect(answer).toEqual({ eligible: false, reason: "Hold at least 1 Cool Cats NFT on Gnosis (counted across your 10 wallets)" });
    const onlyEleventh = await createEligibilityChecker(src).check({ type: "erc20", chainId: 100, token: usdc, minBalance: "1.5", decimals: 6 }, wallets);
    expect(onlyEleventh.eligible).toBe(false);
  });
});

describe("richer logic: atLeast, not, token id ranges", () => {
  it("atLeast N of M passes with N met rules and says what it takes otherwise", async () => {
    const [a] = person(1);
    await chain.write(usdc, "TestERC20", "mint", [a!, 1_000_000n]);
    await chain.write(POAP_CONTRACT, "TestPoap", "mint", [a!, 77n]);
    const of: Rules[] = [{ type: "erc20", chainId: 100, token: usdc, minBalance: "1" }, { type: "poap", eventId: 77 }, { type: "erc721", chainId: 100, contract: nft, minCount: 1 }];
    expect(await check({ atLeast: 2, of }, a!)).toEqual({ eligible: true });
    expect(await check({ atLeast: 3, of }, a!)).toEqual({
      eligible: false,
      reason: "At least 3 of: Hold at least 1 USDC on Gnosis; Hold the POAP of event #77; Hold at least 1 Cool Cats NFT on Gnosis",
    });
  });

  it("not: denied while the inner rule holds, whatever its shape", async () => {
    const [holder, clean] = person(2);
    await chain.write(rival, "TestERC721", "mint", [holder!, 50n]);
    const no: Rules = { not: { type: "erc721", chainId: 100, contract: rival, minCount: 1, tokenId: "50" } };
    expect(await check(no, clean!)).toEqual({ eligible: true });
    expect(await check(no, holder!)).toEqual({ eligible: false, reason: "Do not hold Rival Dogs #50 on Gnosis" });
    expect((await check({ not: { any: [{ type: "poap", eventId: 999 }, { type: "erc721", chainId: 100, contract: rival, minCount: 1 }] } }, holder!)).eligible).toBe(false);
    expect(describeRules({ not: { any: [{ type: "poap", eventId: 1 }, { type: "poap", eventId: 2 }] } })).toBe("None of: Hold the POAP of event #1; Hold the POAP of event #2");
    expect(describeRules({ not: { atLeast: 2, of: [{ type: "poap", eventId: 1 }, { type: "poap", eventId: 2 }] } })).toBe("Fewer than 2 of: Hold the POAP of event #1; Hold the POAP of event #2");
  });

  it("ERC-721 token id range: counts the ids in range held by any wallet (ids outside do not count)", async () => {
    const [a, b] = person(2);
    await chain.write(nft, "TestERC721", "mint", [a!, 1000n]);
    await chain.write(nft, "TestERC721", "mint", [b!, 1499n]);
    await chain.write(nft, "TestERC721", "mint", [b!, 1500n]);
    const rule = (minCount: number): Rules => ({ type: "erc721", chainId: 100, contract: nft, minCount, tokenIds: { from: "1000", to: "1499" } });
    expect(await check(rule(2), [a!, b!])).toEqual({ eligible: true });
    expect(await check(rule(3), [a!, b!])).toEqual({ eligible: false, reason: "Hold at least 3 Cool Cats NFTs numbered 1000 to 1499 on Gnosis (counted across your 2 wallets)" });
    expect((await check(rule(2), [b!])).eligible).toBe(false);
  });

  it("ERC-1155 token id range: balances of every id in range, summed over wallets, via balanceOfBatch", async () => {
    const [a, b] = person(2);
    await chain.write(multi, "TestERC1155", "mint", [a!, 20n, 1n]);
    await chain.write(multi, "TestERC1155", "mint", [b!, 29n, 1n]);
    await chain.write(multi, "TestERC1155", "mint", [b!, 30n, 5n]);
    const rule = (minBalance: string): Rules => ({ type: "erc1155", chainId: 100, contract: multi, tokenIds: { from: "20", to: "29" }, minBalance });
    expect(await check(rule("2"), [a!, b!])).toEqual({ eligible: true });
    expect(await check(rule("3"), [a!, b!])).toEqual({ eligible: false, reason: `Hold at least 3 of tokens #20 to #29 of ${multi.slice(0, 6)}…${multi.slice(-4)} on Gnosis (counted across your 2 wallets)` });
  });

  it("a contract without balanceOfBatch cannot take an ERC-1155 range (400 at create)", async () => {
    await expect(source().prepare({ type: "erc1155", chainId: 100, contract: usdc, tokenIds: { from: "1", to: "2" }, minBalance: "1" })).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it.each([
    ["atLeast above the rules listed", { atLeast: 3, of: [{ type: "open" }, { type: "open" }] }, /atLeast must not be more than/],
    ["atLeast 0", { atLeast: 0, of: [{ type: "open" }] }, /atLeast must be at least 1/],
    ["an empty not", { not: {} }, /must be a rule/],
    ["a range the wrong way round", { type: "erc721", chainId: 100, contract: "0x" + "ab".repeat(20), tokenIds: { from: "5", to: "4" } }, /tokenIds.from must not be above/],
    ["too wide a range", { type: "erc721", chainId: 100, contract: "0x" + "ab".repeat(20), tokenIds: { from: "1", to: String(MAX_TOKEN_ID_RANGE + 1) } }, /at most 500 ids/],
    ["both tokenId and tokenIds", { type: "erc721", chainId: 100, contract: "0x" + "ab".repeat(20), tokenId: "1", tokenIds: { from: "1", to: "2" } }, /not both/],
    ["an erc1155 rule with neither", { type: "erc1155", chainId: 100, contract: "0x" + "ab".repeat(20), minBalance: "1" }, /needs tokenId or tokenIds/],
    ["not nested too deep", { not: { not: { not: { not: { not: { type: "open" } } } } } }, /at most 4 deep/],
  ])("refuses %s", (_label, rules, message) => {
    const parsed = v.safeParse(RulesSchema, rules);
    expect(parsed.success).toBe(false);
    expect(parsed.issues?.map((i) => i.message).join("; ")).toMatch(message);
  });

  it("the exact range limit and atLeast = M are accepted", () => {
    expect(v.safeParse(RulesSchema, { type: "erc721", chainId: 100, contract: "0x" + "ab".repeat(20), tokenIds: { from: "1", to: String(MAX_TOKEN_ID_RANGE) } }).success).toBe(true);
    expect(v.safeParse(RulesSchema, { atLeast: 2, of: [{ type: "open" }, { not: { type: "poap", eventId: 1 } }] }).success).toBe(true);
  });

  it("contract-wallet chains: atLeast is bounded unless enough branches are open; not reads no holdings to stand on", () => {
    const urls = new Map([[100, "http://x"]]);
    const base: Rules = { type: "erc20", chainId: 8453, token: usdc, minBalance: "1" };
    expect(contractWalletChains({ atLeast: 2, of: [{ type: "open" }, base, { type: "poap", eventId: 1 }] }, urls)).toEqual(new Set([8453, 100]));
    expect(contractWalletChains({ atLeast: 1, of: [{ type: "open" }, base] }, urls)).toBe("any");
    expect(contractWalletChains({ all: [base, { not: { type: "poap", eventId: 1 } }] }, urls)).toEqual(new Set([8453]));
  });
});
