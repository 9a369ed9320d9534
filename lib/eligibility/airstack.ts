import * as v from "valibot";
import { parseUnits } from "viem";
import { InvalidRequestError } from "../shared/errors.js";
import type { Address } from "../shared/address.js";
import { chainName } from "../shared/chains.js";
import { EligibilitySourceError, type ExternalLeaf, type Holding, type HoldingsSource } from "./evaluate.js";
import { checkRuleValues, leaves, type Rules } from "../shared/rules.js";

/** Airstack's GraphQL endpoint. */
export const AIRSTACK_URL = "https://api.airstack.xyz/gql";
/** The chains Airstack's `TokenBlockchain` enum names. */
export const AIRSTACK_CHAINS: Readonly<Record<number, string>> = { 1: "ethereum", 8453: "base", 137: "polygon", 7777777: "zora" };

const TOKEN_BALANCES = `query TokenBalances($owner: Identity!, $tokenAddress: Address!, $tokenType: [TokenType!], $blockchain: TokenBlockchain!) {
  TokenBalances(input: {filter: {owner: {_eq: $owner}, tokenAddress: {_eq: $tokenAddress}, tokenType: {_in: $tokenType}}, blockchain: $blockchain, limit: 200}) {
    TokenBalance { amount formattedAmount tokenId tokenAddress tokenType token { decimals } }
  }
}`;
const POAPS = `query Poaps($owner: Identity!, $eventId: String!) {
  Poaps(input: {filter: {owner: {_eq: $owner}, eventId: {_eq: $eventId}}, blockchain: ALL, limit: 1}) {
    Poap { eventId tokenId }
  }
}`;

const GraphQLResponse = v.object({
  data: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  errors: v.optional(v.array(v.object({ message: v.string() }))),
});
const TokenBalancesData = v.object({
  TokenBalances: v.nullable(
    v.object({
      TokenBalance: v.nullable(
        v.array(
          v.object({
            amount: v.union([v.string(), v.number()]),
            tokenId: v.nullish(v.string()),
            token: v.nullish(v.object({ decimals: v.nullish(v.number()) })),
          }),
        ),
      ),
    }),
  ),
});
const PoapsData = v.object({ Poaps: v.nullable(v.object({ Poap: v.nullable(v.array(v.object({ eventId: v.string() }))) })) });

/**
 * Reads holdings from Airstack's GraphQL API (`ELIGIBILITY_PROVIDER=airstack`): `TokenBalances` for
 * ERC-20/721/1155 and `Poaps` for POAPs, `Authorization: <key>`. Its failures (HTTP errors, 429,
 * GraphQL errors, unexpected shapes) are {@link EligibilitySourceError}s, never denials.
 */
export function createAirstackSource(options: { apiKey: string; fetch?: typeof fetch; url?: string; timeoutMs?: number }): HoldingsSource & {
  /** Checks that the rules' values fit a chain and that Airstack serves their chains; reads nothing. @throws {InvalidRequestError} */
  prepare(rules: Rules): Promise<Rules>;
} {
  const doFetch: typeof fetch = (input, init) => (options.fetch ?? globalThis.fetch)(input, init);
  const query = async (text: string, variables: Record<string, unknown>): Promise<Record<string, unknown>> => {
    let response: Response;
    try {
      response = await doFetch(options.url ?? AIRSTACK_URL, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: options.apiKey },
        body: JSON.stringify({ query: text, variables }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 8000),
      });
    } catch (cause) {
      throw new EligibilitySourceError("Airstack unreachable", { cause });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new EligibilitySourceError(`Airstack answered HTTP ${response.status}`);
    }
    const parsed = v.safeParse(GraphQLResponse, await response.json().catch(() => null));
    if (!parsed.success) throw new EligibilitySourceError("Airstack answered an unexpected shape");
    if (parsed.output.errors?.length) throw new EligibilitySourceError(`Airstack GraphQL error: ${parsed.output.errors[0]!.message}`);
    if (!parsed.output.data) throw new EligibilitySourceError("Airstack answered without data");
    return parsed.output.data;
  };

  const readLeaf = async (leaf: ExternalLeaf, owner: Address): Promise<Holding> => {
    if (leaf.type === "poap") {
      const data = v.safeParse(PoapsData, await query(POAPS, { owner, eventId: String(leaf.eventId) }));
      if (!data.success) throw new EligibilitySourceError("Airstack Poaps answered an unexpected shape");
      return { held: (data.output.Poaps?.Poap ?? []).some((p) => p.eventId === String(leaf.eventId)) ? 1n : 0n, needed: 1n };
    }
    if (leaf.type === "coinbaseVerified") throw new EligibilitySourceError("Airstack does not read Coinbase Verifications");
    const blockchain = AIRSTACK_CHAINS[leaf.chainId];
    if (!blockchain) throw new EligibilitySourceError(`Airstack does not serve ${chainName(leaf.chainId)}`);
    const tokenAddress = leaf.type === "erc20" ? leaf.token : leaf.contract;
    const tokenType = leaf.type === "erc20" ? "ERC20" : leaf.type === "erc721" ? "ERC721" : "ERC1155";
    const data = v.safeParse(TokenBalancesData, await query(TOKEN_BALANCES, { owner, tokenAddress, tokenType: [tokenType], blockchain }));
    if (!data.success) throw new EligibilitySourceError("Airstack TokenBalances answered an unexpected shape");
    const rows = data.output.TokenBalances?.TokenBalance ?? [];
    const amount = (row: (typeof rows)[number]) => BigInt(String(row.amount).split(".")[0] ?? "0");
    const inRange = (row: (typeof rows)[number]) => {
      if (leaf.type === "erc20") return true;
      if (leaf.tokenIds) return row.tokenId != null && /^\d+$/.test(row.tokenId) && BigInt(row.tokenId) >= BigInt(leaf.tokenIds.from) && BigInt(row.tokenId) <= BigInt(leaf.tokenIds.to);
      return leaf.tokenId === undefined || row.tokenId === leaf.tokenId;
    };
    const held = rows.filter((row) => amount(row) > 0n && inRange(row));
    switch (leaf.type) {
      case "erc20": {
        // `amount` is in base units; decimals come from the rule (read on chain at create) or Airstack's token.
        const decimals = leaf.decimals ?? rows[0]?.token?.decimals ?? 18;
        return { held: held.reduce((sum, row) => sum + amount(row), 0n), needed: parseUnits(leaf.minBalance, decimals) };
      }
      case "erc721":
        return { held: BigInt(held.length), needed: leaf.tokenId !== undefined ? 1n : BigInt(leaf.minCount) };
      case "erc1155":
        return { held: held.reduce((sum, row) => sum + amount(row), 0n), needed: BigInt(leaf.minBalance) };
    }
  };

  return {
    // One query per wallet and leaf, summed per leaf: Airstack has no query for several owners' balances of one token.
    // Delegations (vaults) are read on chain only: Airstack counts the person's own wallets.
    async read(list, wallets) {
      const perWallet = await Promise.all(wallets.map((owner) => Promise.all(list.map((leaf) => readLeaf(leaf, owner)))));
      const holdings = list.map((_, i) => {
        const leaf = list[i]!;
        const parts = perWallet.map((answers) => answers[i]!);
        const needed = parts[0]?.needed ?? 0n;
        // A POAP or one token id counts once whichever wallet holds it.
        const once = leaf.type === "poap" || (leaf.type === "erc721" && leaf.tokenId !== undefined);
        const held = once ? (parts.some((p) => p.held > 0n) ? 1n : 0n) : parts.reduce((n, p) => n + p.held, 0n);
        return { held, needed };
      });
      return { holdings, vaults: "" };
    },
    async prepare(rules) {
      checkRuleValues(rules);
      for (const leaf of leaves(rules)) {
        if (leaf.type === "coinbaseVerified") throw new InvalidRequestError("Coinbase Verifications are read on chain: use ELIGIBILITY_PROVIDER=onchain with RPC_URL_8453");
        if ((leaf.type === "erc20" || leaf.type === "erc721" || leaf.type === "erc1155") && !AIRSTACK_CHAINS[leaf.chainId]) {
          throw new InvalidRequestError(`Airstack does not serve ${chainName(leaf.chainId)}; use chainId ${Object.keys(AIRSTACK_CHAINS).join(", ")}`);
        }
      }
      return rules;
    },
  };
}
