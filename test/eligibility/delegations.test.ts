import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, createWalletClient, defineChain, http, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createEligibilityChecker } from "../../lib/eligibility/evaluate.js";
import { createOnchainSource, DELEGATE_REGISTRY, POAP_CONTRACT } from "../../lib/eligibility/onchain.js";
import type { Address } from "../../lib/shared/address.js";
import type { Rules } from "../../lib/shared/rules.js";
import { createEligibilityService } from "../../lib/eligibility/service.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { testRedis } from "../support/test-app.js";

// delegate.xyz v2 vaults on anvil: a registry written from IDelegateRegistry.sol at the real address, each type of
// delegation made by the vault's own key. Only what is delegated counts, and at most what the vault holds.
let chain: LocalChain;
let usdc: Address;
let dai: Address;
let nft: Address;
let rival: Address;
let multi: Address;
let requests = 0;
const countingFetch: typeof fetch = (input, init) => {
  requests++;
  return fetch(input, init);
};
const lower = (a: string) => a.toLowerCase() as Address;
beforeAll(async () => {
  chain = await startLocalChain(1);
  usdc = lower(await chain.deploy("TestERC20", ["USD Coin", "USDC", 6]));
  dai = lower(await chain.deploy("TestERC20", ["Dai", "DAI", 18]));
  nft = lower(await chain.deploy("TestERC721", ["Cool Cats"]));
  rival = lower(await chain.deploy("TestERC721", ["Rival Dogs"]));
  multi = lower(await chain.deploy("TestERC1155"));
  await chain.placeAt(DELEGATE_REGISTRY, "TestDelegateRegistry");
  await chain.placeAt(POAP_CONTRACT, "TestPoap");
}, 60_000);
afterAll(() => chain?.stop());

const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const source = () => createOnchainSource({ rpcUrls: new Map([[1, chain.url]]), fetch: countingFetch });
const check = async (rules: Rules, wallets: readonly Address[]) => createEligibilityChecker(source()).check(await source().prepare(rules), wallets);
const NO_RIGHTS: Hex = `0x${"00".repeat(32)}`;

/** A cold wallet with a key of its own, funded for gas, that delegates from itself. */
async function vault() {
  const account = privateKeyToAccount(generatePrivateKey());
  const anvil = defineChain({ id: 1, name: "anvil", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [chain.url] } } });
  const publicClient = createPublicClient({ chain: anvil, transport: http(chain.url) });
  await publicClient.request({ method: "anvil_setBalance" as never, params: [account.address, "0x56BC75E2D63100000"] as never });
  const wc = createWalletClient({ chain: anvil, transport: http(chain.url), account });
  const abi = chain.contracts.TestDelegateRegistry!.abi;
  return {
    address: lower(account.address),
    async delegate(functionName: string, args: readonly unknown[]) {
      const hash = await wc.writeContract({ address: DELEGATE_REGISTRY, abi, functionName, args: [...args] });
      await publicClient.waitForTransactionReceipt({ hash });
    },
  };
}

describe("delegate.xyz v2 vaults count for the wallets they delegated to", () => {
  it("a whole-wallet delegation lends everything the vault holds; revoking it ends that", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(usdc, "TestERC20", "mint", [cold.address, 100_000_000n]);
    const rule: Rules = { type: "erc20", chainId: 1, token: usdc, minBalance: "100" };
    expect((await check(rule, [hot])).eligible).toBe(false);
    await cold.delegate("delegateAll", [hot, NO_RIGHTS, true]);
    expect(await check(rule, [hot])).toEqual({ eligible: true });
    await cold.delegate("delegateAll", [hot, NO_RIGHTS, false]);
    expect((await check(rule, [hot])).eligible).toBe(false);
  });

  it("a contract delegation lends that contract only, not the vault's other tokens", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(nft, "TestERC721", "mint", [cold.address, 9001n]);
    await chain.write(nft, "TestERC721", "mint", [cold.address, 9002n]);
    await chain.write(dai, "TestERC20", "mint", [cold.address, 10n ** 18n]);
    await cold.delegate("delegateContract", [hot, nft, NO_RIGHTS, true]);
    expect(await check({ type: "erc721", chainId: 1, contract: nft, minCount: 2 }, [hot])).toEqual({ eligible: true });
    expect(await check({ type: "erc721", chainId: 1, contract: nft, minCount: 1, tokenIds: { from: "9000", to: "9001" } }, [hot])).toEqual({ eligible: true });
    expect((await check({ type: "erc20", chainId: 1, token: dai, minBalance: "1" }, [hot])).eligible).toBe(false);
  });

  it("a single ERC-721 token delegation lends that token only, counted once toward minCount while the vault holds it", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(nft, "TestERC721", "mint", [cold.address, 9101n]);
    await chain.write(nft, "TestERC721", "mint", [cold.address, 9102n]);
    await cold.delegate("delegateERC721", [hot, nft, 9101n, NO_RIGHTS, true]);
    expect(await check({ type: "erc721", chainId: 1, contract: nft, minCount: 1 }, [hot])).toEqual({ eligible: true });
    expect((await check({ type: "erc721", chainId: 1, contract: nft, minCount: 2 }, [hot])).eligible).toBe(false);
    expect(await check({ type: "erc721", chainId: 1, contract: nft, minCount: 1, tokenId: "9101" }, [hot])).toEqual({ eligible: true });
    expect((await check({ type: "erc721", chainId: 1, contract: nft, minCount: 1, tokenId: "9102" }, [hot])).eligible).toBe(false);
    // The hot wallet's own token and the lent one add up.
    await chain.write(nft, "TestERC721", "mint", [hot, 9103n]);
    expect(await check({ type: "erc721", chainId: 1, contract: nft, minCount: 2 }, [hot])).toEqual({ eligible: true });
  });

  it("an ERC-20 amount delegation lends at most that amount, and at most what the vault holds", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(usdc, "TestERC20", "mint", [cold.address, 100_000_000n]);
    await cold.delegate("delegateERC20", [hot, usdc, NO_RIGHTS, 30_000_000n]);
    expect(await check({ type: "erc20", chainId: 1, token: usdc, minBalance: "30" }, [hot])).toEqual({ eligible: true });
    expect((await check({ type: "erc20", chainId: 1, token: usdc, minBalance: "31" }, [hot])).eligible).toBe(false);
    await cold.delegate("delegateERC20", [hot, usdc, NO_RIGHTS, 500_000_000n]);
    expect(await check({ type: "erc20", chainId: 1, token: usdc, minBalance: "100" }, [hot])).toEqual({ eligible: true });
    expect((await check({ type: "erc20", chainId: 1, token: usdc, minBalance: "100.000001" }, [hot])).eligible).toBe(false);
  });

  it("an ERC-1155 amount delegation lends at most that amount of that id", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(multi, "TestERC1155", "mint", [cold.address, 3n, 10n]);
    await chain.write(multi, "TestERC1155", "mint", [cold.address, 4n, 10n]);
    await cold.delegate("delegateERC1155", [hot, multi, 3n, NO_RIGHTS, 4n]);
    expect(await check({ type: "erc1155", chainId: 1, contract: multi, tokenId: "3", minBalance: "4" }, [hot])).toEqual({ eligible: true });
    expect((await check({ type: "erc1155", chainId: 1, contract: multi, tokenId: "3", minBalance: "5" }, [hot])).eligible).toBe(false);
    expect((await check({ type: "erc1155", chainId: 1, contract: multi, tokenId: "4", minBalance: "1" }, [hot])).eligible).toBe(false);
  });

  it("a `not` rule holds only if no delegating vault meets the inner rule either", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(rival, "TestERC721", "mint", [cold.address, 77n]);
    const no: Rules = { not: { type: "erc721", chainId: 1, contract: rival, minCount: 1 } };
    expect(await check(no, [hot])).toEqual({ eligible: true });
    await cold.delegate("delegateAll", [hot, NO_RIGHTS, true]);
    expect((await check(no, [hot])).eligible).toBe(false);
  });

  it("only full delegations count (rights 0x0): a subdelegation with specific rights lends nothing", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(usdc, "TestERC20", "mint", [cold.address, 100_000_000n]);
    await cold.delegate("delegateAll", [hot, `0x${"11".repeat(32)}`, true]);
    expect((await check({ type: "erc20", chainId: 1, token: usdc, minBalance: "1" }, [hot])).eligible).toBe(false);
  });

  it("without vaults a decision is still one JSON-RPC batch; with one, a second batch reads what it lends", async () => {
    const [hot, cold] = [wallet(), await vault()];
    const src = source();
    const rules = await src.prepare({ type: "erc20", chainId: 1, token: usdc, minBalance: "1" });
    let before = requests;
    await createEligibilityChecker(src).check(rules, [hot, wallet()]);
    expect(requests - before).toBe(1);
    await cold.delegate("delegateAll", [hot, NO_RIGHTS, true]);
    before = requests;
    await createEligibilityChecker(src).check(rules, [hot, wallet()]);
    expect(requests - before).toBe(2);
  });

  it("the answer cache is keyed by the delegations too: one made (or changed) since counts at once; unchanged, a hit", async () => {
    const [hot, cold] = [wallet(), await vault()];
    await chain.write(usdc, "TestERC20", "mint", [cold.address, 100_000_000n]);
    const service = createEligibilityService({ provider: "onchain", rpcUrls: new Map([[1, chain.url]]), airstackApiKey: null, cacheTtlSeconds: 60 }, testRedis(), `deleg${Date.now()}`);
    const rules = await service.prepare({ type: "erc20", chainId: 1, token: usdc, minBalance: "50" });
    expect((await service.check(rules, [hot], "g")).eligible).toBe(false);
    await cold.delegate("delegateERC20", [hot, usdc, NO_RIGHTS, 10_000_000n]);
    expect((await service.check(rules, [hot], "g")).eligible).toBe(false);
    await cold.delegate("delegateERC20", [hot, usdc, NO_RIGHTS, 60_000_000n]);
    expect(await service.check(rules, [hot], "g")).toEqual({ eligible: true });
    const hits = service.cacheStats.hits;
    expect(await service.check(rules, [hot], "g")).toEqual({ eligible: true });
    expect(service.cacheStats.hits).toBe(hits + 1);
  });
});
