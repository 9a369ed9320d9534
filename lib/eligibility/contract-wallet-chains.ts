import { BASE_CHAIN_ID, children, isLeaf, type Rules } from "../shared/rules.js";

/**
 * The chain the POAP rules read when they name none: Gnosis, where POAPs are minted, unless only Ethereum has an RPC.
 */
export function defaultPoapChain(rpcUrls: ReadonlyMap<number, string>): number {
  return rpcUrls.has(100) ? 100 : rpcUrls.has(1) ? 1 : 100;
}

/**
 * On which chains a smart-contract wallet's sign-in may be checked for a group: the chains its rules read
 * holdings on. The same contract address can belong to someone else on another chain (it has happened: the
 * Wintermute Safe on Optimism), so a signature checked anywhere else would let that someone join on the
 * victim's holdings. Rules anyone can pass without holdings (`open`, or `any` with an open branch) accept any
 * chain; rules that read no chain at all (an allowlist alone) accept none: such a group takes keys' signatures only.
 */
export function contractWalletChains(rules: Rules, rpcUrls: ReadonlyMap<number, string>): ReadonlySet<number> | "any" {
  if (!isLeaf(rules)) {
    // `not` passes for whoever holds nothing, like `open`.
    if ("not" in rules) return "any";
    const parts = children(rules).map((c) => contractWalletChains(c.rule, rpcUrls));
    const bounded = parts.filter((p): p is ReadonlySet<number> => p !== "any");
    const open = parts.length - bounded.length;
    // Unbounded when the rules can be met without holdings: any open branch of an `any`, enough of them for `atLeast`.
    const needed = "all" in rules ? parts.length : "any" in rules ? 1 : rules.atLeast;
    if (open >= needed || bounded.length === 0) return "any";
    return new Set(bounded.flatMap((p) => [...p]));
  }
  switch (rules.type) {
    case "open":
      return "any";
    case "allowlist":
      return new Set();
    case "poap":
      return new Set([rules.chainId ?? defaultPoapChain(rpcUrls)]);
    case "coinbaseVerified":
      return new Set([BASE_CHAIN_ID]);
    default:
      return new Set([rules.chainId]);
  }
}
