import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Address as ViemAddress } from "viem";
import { InvalidRequestError } from "../../lib/shared/errors.js";
import { createEligibilityChecker, EligibilitySourceError } from "../../lib/eligibility/evaluate.js";
import { createOnchainSource, POAP_CONTRACT } from "../../lib/eligibility/onchain.js";
import type { Rules } from "../../lib/shared/rules.js";
import type { Address } from "../../lib/shared/address.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { freePort } from "../../local/redis/redis-server.js";

let chain: LocalChain;
let usdc: ViemAddress; // 6 decimals
let dai: ViemAddress; // 18 decimals
let nft: ViemAddress;
let multi: ViemAddress;
let reverter: ViemAddress;
let requests = 0;
const countingFetch: typeof fetch = (input, init) => {
  requests++;
  return fetch(input, init);
};

beforeAll(async () => {
  chain = await startLocalChain(100);
  usdc = await chain.deploy("TestERC20", ["USD Coin", "USDC", 6]);
  dai = await chain.deploy("TestERC20", ["Dai", "DAI", 18]);
  nft = await chain.deploy("TestERC721", ["Cool Cats"]);
  multi = await chain.deploy("TestERC1155");
  reverter = await chain.deploy("Reverter");
  await chain.placeAt(POAP_CONTRACT, "TestPoap");
}, 60_000);
afterAll(() => chain?.stop());

const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const source = () => createOnchainSource({ rpcUrls: new Map([[100, chain.url]]), fetch: countingFetch });
const check = async (rules: Rules, address: Address) => createEligibilityChecker(source()).check(await source().prepare(rules), address);

describe("on-chain eligibility against a real EVM (anvil)", () => {
  it("ERC-20 with 6 decimals: exactly the threshold passes, one unit below fails with a readable reason, zero fails", async () => {
    const rule: Rules = { type: "erc20", chainId: 100, token: usdc.toLowerCase() as Address, minBalance: "100" };
    const [at, below, none] = [wallet(), wallet(), wallet()];
    await chain.write(usdc, "TestERC20", "mint", [at, 100_000_000n]);
    await chain.write(usdc, "TestERC20", "mint", [below, 99_999_999n]);
    expect(await check(rule, at)).toEqual({ eligible: true });
    expect(await check(rule, below)).toEqual({ eligible: false, reason: "Hold at least 100 USDC on Gnosis" });
    expect(await check(rule, none)).toEqual({ eligible: false, reason: "Hold at least 100 USDC on Gnosis" });
  });

  it("ERC-20 with 18 decimals: fractional thresholds and huge balances with bigint arithmetic", async () => {
    const half: Rules = { type: "erc20", chainId: 100, token: dai.toLowerCase() as Address, minBalance: "0.5" };
    const [a, b, whale] = [wallet(), wallet(), wallet()];
    await chain.write(dai, "TestERC20", "mint", [a, 500_000_000_000_000_000n]);
    await chain.write(dai, "TestERC20", "mint", [b, 499_999_999_999_999_999n]);
    await chain.write(dai, "TestERC20", "mint", [whale, 2n ** 255n]);
    expect(await check(half, a)).toEqual({ eligible: true });
    expect((await check(half, b)).eligible).toBe(false);
    const huge: Rules = { type: "erc20", chainId: 100, token: dai.toLowerCase() as Address, minBalance: "1000000000000000000000000000000000000000" };
    expect(await check(huge, whale)).toEqual({ eligible: true });
    expect((await check(huge, a)).eligible).toBe(false);
  });

  it("stores the token's symbol and decimals, and the collection name, read on chain at create", async () => {
    const prepared = await source().prepare({
      all: [
        { type: "erc20", chainId: 100, token: usdc.toLowerCase() as Address, minBalance: "1" },
        { type: "erc721", chainId: 100, contract: nft.toLowerCase() as Address, minCount: 1 },
      ],
    });
    expect(prepared).toMatchObject({ all: [{ symbol: "USDC", decimals: 6 }, { name: "Cool Cats" }] });
  });

  it("ERC-721 by count and by token id (a token nobody owns is a denial, not an error)", async () => {
    const [holder, other] = [wallet(), wallet()];
    await chain.write(nft, "TestERC721", "mint", [holder, 7n]);
    await chain.write(nft, "TestERC721", "mint", [holder, 8n]);
    const contract = nft.toLowerCase() as Address;
    expect(await check({ type: "erc721", chainId: 100, contract, minCount: 2 }, holder)).toEqual({ eligible: true });
    expect(await check({ type: "erc721", chainId: 100, contract, minCount: 3 }, holder)).toEqual({ eligible: false, reason: "Hold at least 3 Cool Cats NFTs on Gnosis" });
    expect(await check({ type: "erc721", chainId: 100, contract, minCount: 1, tokenId: "7" }, holder)).toEqual({ eligible: true });
    expect(await check({ type: "erc721", chainId: 100, contract, minCount: 1, tokenId: "7" }, other)).toEqual({ eligible: false, reason: "Hold Cool Cats #7 on Gnosis" });
    expect((await check({ type: "erc721", chainId: 100, contract, minCount: 1, tokenId: "999" }, holder)).eligible).toBe(false);
  });

  it("ERC-1155 balance of one token id", async () => {
    const holder = wallet();
    await chain.write(multi, "TestERC1155", "mint", [holder, 5n, 3n]);
    const contract = multi.toLowerCase() as Address;
    expect(await check({ type: "erc1155", chainId: 100, contract, tokenId: "5", minBalance: "3" }, holder)).toEqual({ eligible: true });
    expect((await check({ type: "erc1155", chainId: 100, contract, tokenId: "5", minBalance: "4" }, holder)).eligible).toBe(false);
    expect((await check({ type: "erc1155", chainId: 100, contract, tokenId: "6", minBalance: "1" }, holder)).eligible).toBe(false);
  });

  it("POAP: finds the event among the wallet's POAPs, also past the first batch", async () => {
    const [few, many, none] = [wallet(), wallet(), wallet()];
    for (const e of [1n, 2n, 141910n]) await chain.write(POAP_CONTRACT, "TestPoap", "mint", [few, e]);
    for (let i = 0; i < 25; i++) await chain.write(POAP_CONTRACT, "TestPoap", "mint", [many, BigInt(1000 + i)]);
    await chain.write(POAP_CONTRACT, "TestPoap", "mint", [many, 141910n]);
    const rule: Rules = { type: "poap", eventId: 141910 };
    expect(await check(rule, few)).toEqual({ eligible: true });
    expect(await check(rule, many)).toEqual({ eligible: true });
    expect(await check(rule, none)).toEqual({ eligible: false, reason: "Hold the POAP of event #141910" });
  });

  it("any/all trees: passes when one branch passes, and says what would qualify", async () => {
    const holder = wallet();
    await chain.write(usdc, "TestERC20", "mint", [holder, 5_000_000n]);
    const rules: Rules = {
      any: [
        { type: "erc20", chainId: 100, token: usdc.toLowerCase() as Address, minBalance: "10" },
        { all: [{ type: "poap", eventId: 42 }, { type: "erc20", chainId: 100, token: usdc.toLowerCase() as Address, minBalance: "1" }] },
      ],
    };
    const result = await check(rules, holder);
    expect(result).toEqual({ eligible: false, reason: "One of: Hold at least 10 USDC on Gnosis; or Hold the POAP of event #42, and Hold at least 1 USDC on Gnosis" });
    await chain.write(POAP_CONTRACT, "TestPoap", "mint", [holder, 42n]);
    expect(await check(rules, holder)).toEqual({ eligible: true });
  });

  it("one decision makes one batched JSON-RPC round trip per chain (5 leaves)", async () => {
    const holder = wallet();
    const src = source();
    const rules = await src.prepare({
      all: [
        { type: "erc20", chainId: 100, token: usdc.toLowerCase() as Address, minBalance: "1" },
        { type: "erc20", chainId: 100, token: dai.toLowerCase() as Address, minBalance: "1" },
        { type: "erc721", chainId: 100, contract: nft.toLowerCase() as Address, minCount: 1 },
        { type: "erc1155", chainId: 100, contract: multi.toLowerCase() as Address, tokenId: "1", minBalance: "1" },
        { type: "poap", eventId: 7 },
      ],
    });
    const before = requests;
    await createEligibilityChecker(src).check(rules, holder);
    expect(requests - before).toBe(1);
  });

  it("a contract that reverts: 400 at create, and a retryable source error (not a denial) at join", async () => {
    const rule: Rules = { type: "erc20", chainId: 100, token: reverter.toLowerCase() as Address, minBalance: "1" };
    await expect(source().prepare(rule)).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(createEligibilityChecker(source()).check({ ...rule, decimals: 18 }, wallet())).rejects.toBeInstanceOf(EligibilitySourceError);
  });

  it("a non-contract address is refused at create", async () => {
    await expect(source().prepare({ type: "erc721", chainId: 100, contract: wallet(), minCount: 1 })).rejects.toThrow(/is not a contract on Gnosis/);
  });

  it("a chain without RPC is refused at create naming the variable", async () => {
    await expect(source().prepare({ type: "erc20", chainId: 8453, token: wallet(), minBalance: "1" })).rejects.toThrow(/RPC_URL_8453/);
  });

  it("a stored rule whose chain has lost its RPC: a source error at join (503), not a 400 or a denial", async () => {
    const rule: Rules = { type: "erc20", chainId: 8453, token: wallet(), minBalance: "1", decimals: 18 };
    await expect(createEligibilityChecker(source()).check(rule, wallet())).rejects.toBeInstanceOf(EligibilitySourceError);
  });

  it("RPC down: a source error (503 for the person), never a denial", async () => {
    const down = createOnchainSource({ rpcUrls: new Map([[100, `http://127.0.0.1:${await freePort()}`]]), timeoutMs: 1000 });
    const rule: Rules = { type: "erc20", chainId: 100, token: usdc.toLowerCase() as Address, minBalance: "1", decimals: 6 };
    await expect(createEligibilityChecker(down).check(rule, wallet())).rejects.toBeInstanceOf(EligibilitySourceError);
  });
});
