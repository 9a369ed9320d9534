import {
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  createPublicClient,
  decodeAbiParameters,
  encodeFunctionData,
  ExecutionRevertedError,
  hexToBigInt,
  hexToBytes,
  http,
  HttpRequestError,
  InternalRpcError,
  LimitExceededRpcError,
  parseAbi,
  parseUnits,
  ResourceUnavailableRpcError,
  RpcRequestError,
  size,
  slice,
  SocketClosedError,
  TimeoutError,
  WebSocketRequestError,
  type Hex,
  type PublicClient,
} from "viem";
import { InvalidRequestError } from "../shared/errors.js";
import type { Address } from "../shared/address.js";
import { defaultPoapChain } from "./contract-wallet-chains.js";
import { chainName } from "../shared/chains.js";
import { EligibilitySourceError, type ExternalLeaf, type Holding, type HoldingsSource } from "./evaluate.js";
import { BASE_CHAIN_ID, checkRuleValues, leafPaths, mapLeaves, MAX_DECIMALS, MAX_UINT256, type LeafRule, type Rules, type TokenIdRange } from "../shared/rules.js";

/** The POAP contract (same address on Gnosis and Ethereum). */
export const POAP_CONTRACT = "0x22c1f6050e56d2876009903609a2cc3fef83b415" as const;
/** POAPs of one wallet scanned per decision (a wallet holding more is checked on its first ones only). */
export const POAP_SCAN_LIMIT = 100;
const POAP_FIRST_BATCH = 20;

const ERC20 = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function decimals() view returns (uint8)",
  "function symbol() view returns (string)",
  "function name() view returns (string)",
]);
const ERC721 = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function ownerOf(uint256) view returns (address)",
  "function name() view returns (string)",
]);
const ERC1155 = parseAbi([
  "function balanceOf(address, uint256) view returns (uint256)",
  "function balanceOfBatch(address[], uint256[]) view returns (uint256[])",
]);
const POAP = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function tokenDetailsOfOwnerByIndex(address, uint256) view returns (uint256 tokenId, uint256 eventId)",
]);

/** delegate.xyz v2's registry: the same address on every EVM chain but the ZKsync family's. */
export const DELEGATE_REGISTRY = "0x00000000000000447e69651d841bd8d104bed493" as const;
/** delegate.xyz v2's registry on ZKsync-family chains. */
export const DELEGATE_REGISTRY_ZKSYNC = "0x0000000059a24eb229eed07ac44229db56c5d797" as const;
/** ZKsync Era, its Sepolia testnet, Abstract and Abstract's testnet. */
const ZKSYNC_CHAINS: ReadonlySet<number> = new Set([324, 300, 2741, 11124]);
/** Vaults (cold wallets delegating to the person) counted per chain, at most. */
export const MAX_VAULTS = 10;
const FULL_RIGHTS = `0x${"00".repeat(32)}` as const;
const MAX_AMOUNT = 2n ** 256n - 1n;
const DELEGATE_REGISTRY_ABI = parseAbi([
  "function getIncomingDelegations(address to) view returns ((uint8 type_, address to, address from, bytes32 rights, address contract_, uint256 tokenId, uint256 amount)[])",
  "function checkDelegateForContract(address to, address from, address contract_, bytes32 rights) view returns (bool)",
  "function checkDelegateForERC721(address to, address from, address contract_, uint256 tokenId, bytes32 rights) view returns (bool)",
  "function checkDelegateForERC20(address to, address from, address contract_, bytes32 rights) view returns (uint256)",
  "function checkDelegateForERC1155(address to, address from, address contract_, uint256 tokenId, bytes32 rights) view returns (uint256)",
]);
/** delegate.xyz's `DelegationType.ERC721`. */
const DELEGATION_ERC721 = 3;

/** A cold wallet that delegated (full rights) to some of the person's wallets on one chain. */
interface Vault {
  readonly address: Address;
  /** The person's wallets it delegated to. */
  readonly delegates: readonly Address[];
  /** Its single-token ERC-721 delegations to them: `contract:tokenId`. */
  readonly tokens: ReadonlySet<string>;
  /** Every delegation of it to the person, as text (type, to, contract, token id, amount): what the cache key names. */
  readonly entries: readonly string[];
}

/** Coinbase's attestation indexer on Base: the newest attestation uid per (recipient, schema). */
export const COINBASE_INDEXER = "0x2c7ee1e5f416dff40054c27a62f7b357c4e8619c" as const;
/** Ethereum Attestation Service, a predeploy on Base (and every OP Stack chain). */
export const EAS_CONTRACT = "0x4200000000000000000000000000000000000021" as const;
/** The only attester whose Coinbase Verifications count. */
export const COINBASE_ATTESTER = "0x357458739f90461b99789350868cd7cf330dd7ee" as const;
/** Coinbase Verifications' schemas: a verified account (bool), a verified country (ISO 3166-1 alpha-2 string). */
export const COINBASE_SCHEMAS = {
  account: "0xf8b05c79f090979bf4a80270aba232dff11a10d9ca55c4f88de95317970f0de9",
  country: "0x1801901fabd0e6189356b4fb52bb0ab855276d84f7ec140839fbd1f6801ca065",
} as const;
const COINBASE_INDEXER_ABI = parseAbi(["function getAttestationUid(address recipient, bytes32 schemaUid) view returns (bytes32)"]);
const EAS_ABI = parseAbi([
  "function getAttestation(bytes32 uid) view returns ((bytes32 uid, bytes32 schema, uint64 time, uint64 expirationTime, uint64 revocationTime, bytes32 refUID, address recipient, address attester, bool revocable, bytes data))",
]);
const ZERO_UID = `0x${"00".repeat(32)}`;

/**
 * Whether `wallet` carries a valid Coinbase Verification of the leaf's kind: the indexer names an attestation, and
 * EAS holds it for this recipient and schema, from Coinbase's attester, not revoked, not expired (and, for a
 * country, one of the leaf's). EAS's own `isAttestationValid` is not asked: it ignores revocation.
 * @throws {EligibilitySourceError} a read failed.
 */
async function coinbaseVerified(c: PublicClient, leaf: Extract<LeafRule, { type: "coinbaseVerified" }>, wallet: Address): Promise<boolean> {
  const schema = COINBASE_SCHEMAS[leaf.attestation];
  let uid: Hex;
  try {
    uid = await c.readContract({ address: COINBASE_INDEXER, abi: COINBASE_INDEXER_ABI, functionName: "getAttestationUid", args: [wallet, schema] });
  } catch (cause) {
    throw new EligibilitySourceError("On-chain read failed: Coinbase indexer getAttestationUid", { cause });
  }
  if (uid === ZERO_UID) return false;
  let attestation: { uid: Hex; schema: Hex; expirationTime: bigint; revocationTime: bigint; recipient: string; attester: string; data: Hex };
  try {
    attestation = await c.readContract({ address: EAS_CONTRACT, abi: EAS_ABI, functionName: "getAttestation", args: [uid] });
  } catch (cause) {
    throw new EligibilitySourceError("On-chain read failed: EAS getAttestation", { cause });
  }
  const now = BigInt(Math.floor(Date.now() / 1000));
  const valid =
    attestation.uid === uid &&
    attestation.schema === schema &&
    attestation.recipient.toLowerCase() === wallet &&
    attestation.attester.toLowerCase() === COINBASE_ATTESTER &&
    attestation.revocationTime === 0n &&
    (attestation.expirationTime === 0n || attestation.expirationTime > now);
  if (!valid) return false;
  if (leaf.attestation === "account") return true;
  try {
    const [country] = decodeAbiParameters([{ type: "string" }], attestation.data);
    return (leaf.countries ?? []).includes(country.trim().toUpperCase());
  } catch {
    return false;
  }
}

/** A stable text naming every vault counted per chain, whom it delegated to and which single tokens. */
function fingerprint(chains: readonly number[], vaults: readonly (readonly Vault[])[]): string {
  const parts = chains.flatMap((chainId, i) =>
    (vaults[i] ?? []).map((v) => `${chainId}:${v.address}=${[...v.entries].sort().join("+")}`),
  );
  return parts.sort().join(";");
}

/** Options of {@link createOnchainSource}. */
export interface OnchainOptions {
  /** JSON-RPC URL per chain id (from `RPC_URL_<chainId>`). */
  readonly rpcUrls: ReadonlyMap<number, string>;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
}

/** Most calls in one JSON-RPC batch: a decision for 10 wallets over a few leaves, or one token id range, fits one batch. */
const BATCH_SIZE = 1000;

/** Every id of a range, in order. */
const idsOf = (range: TokenIdRange): bigint[] => {
  const from = BigInt(range.from);
  return Array.from({ length: Number(BigInt(range.to) - from) + 1 }, (_, i) => from + BigInt(i));
};
const sum = (values: readonly bigint[]) => values.reduce((a, b) => a + b, 0n);

/**
 * Reads holdings from the chains over JSON-RPC with viem, for every wallet of the person: the calls for one
 * decision (every leaf, every wallet) go out as one JSON-RPC batch per chain.
 */
export function createOnchainSource(options: OnchainOptions): HoldingsSource & {
  /**
   * Validates rules for create and PATCH, and fills in what is read on chain (symbol, decimals, name), replacing
   * any sent. Refuses, with the path of the rule: values no chain holds, a chain without RPC, an address without
   * code, and a contract whose answer to the rule's own read (for {@link PROBE_ADDRESS}) or to `decimals()`
   * cannot be used. One JSON-RPC batch per chain.
   * @throws {InvalidRequestError} naming what is wrong (400).
   * @throws {EligibilitySourceError} the chain could not be reached (503): only transport failures and timeouts.
   */
  prepare(rules: Rules): Promise<Rules>;
} {
  const clients = new Map<number, PublicClient>();
  const client = (chainId: number): PublicClient => {
    const url = options.rpcUrls.get(chainId);
    // At join time a missing RPC is the deployment's problem, not the person's: retryable, never a denial or a 400.
    // (`prepare` refuses such rules at create before getting here.)
    if (!url) throw new EligibilitySourceError(`No RPC configured for ${chainName(chainId)} (RPC_URL_${chainId})`);
    let c = clients.get(chainId);
    if (!c) {
      c = createPublicClient({
        // A contract may revert with OffchainLookup (EIP-3668) to make the caller fetch URLs it names: never here.
        ccipRead: false,
        transport: http(url, {
          batch: { batchSize: BATCH_SIZE, wait: 0 },
          retryCount: 1,
          timeout: options.timeoutMs ?? 8000,
          ...(options.fetch ? { fetchFn: options.fetch } : {}),
        }),
      });
      clients.set(chainId, c);
    }
    return c;
  };
  const poapChain = (leaf: Extract<ExternalLeaf, { type: "poap" }>) => leaf.chainId ?? defaultPoapChain(options.rpcUrls);
  /** The chain a leaf reads. */
  const chainOf = (leaf: ExternalLeaf): number => (leaf.type === "poap" ? poapChain(leaf) : leaf.type === "coinbaseVerified" ? BASE_CHAIN_ID : leaf.chainId);

  const read = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (cause) {
      throw new EligibilitySourceError(`On-chain read failed: ${what}`, { cause });
    }
  };

  /** Whether `ownerOf(id)` names one of `wallets`; a token nobody owns (ownerOf reverts, as ERC-721 says) is not held. */
  const ownsToken = async (c: PublicClient, contract: Address, id: bigint, wallets: readonly Address[]): Promise<boolean> => {
    try {
      const holder = await c.readContract({ address: contract, abi: ERC721, functionName: "ownerOf", args: [id] });
      return wallets.includes(holder.toLowerCase() as Address);
    } catch (error) {
      if (isRevert(error)) return false;
      throw new EligibilitySourceError("On-chain read failed: erc721 ownerOf", { cause: error });
    }
  };

  /** Whether one wallet holds a POAP of the event among its first {@link POAP_SCAN_LIMIT}. */
  const holdsPoap = async (c: PublicClient, owner: Address, eventId: bigint): Promise<boolean> => {
    // Balance and the first tokens are asked in the same batch; indexes past the balance just revert.
    const details = (from: number, to: number) =>
      Array.from({ length: Math.max(0, to - from) }, (_, i) =>
        c.readContract({ address: POAP_CONTRACT, abi: POAP, functionName: "tokenDetailsOfOwnerByIndex", args: [owner, BigInt(from + i)] }).then(
          ([, event]) => event,
          () => null,
        ),
      );
    const [balance, ...first] = await Promise.all([
      read("poap balanceOf", () => c.readContract({ address: POAP_CONTRACT, abi: POAP, functionName: "balanceOf", args: [owner] })),
      ...details(0, POAP_FIRST_BATCH),
    ]);
    const held = Number(balance > BigInt(POAP_SCAN_LIMIT) ? BigInt(POAP_SCAN_LIMIT) : balance);
    const events = first.slice(0, held);
    if (events.includes(eventId)) return true;
    if (held > POAP_FIRST_BATCH) events.push(...(await Promise.all(details(POAP_FIRST_BATCH, held))));
    if (events.some((e) => e === null)) throw new EligibilitySourceError("On-chain read failed: poap tokenDetailsOfOwnerByIndex");
    return events.includes(eventId);
  };

  /**
   * The vaults delegating to the person on one chain: `getIncomingDelegations` of each wallet, full rights (0x0)
   * only, the person's own wallets left out. A chain without the registry has none.
   */
  const vaultsOn = async (chainId: number, wallets: readonly Address[]): Promise<Vault[]> => {
    const c = client(chainId);
    const registry = ZKSYNC_CHAINS.has(chainId) ? DELEGATE_REGISTRY_ZKSYNC : DELEGATE_REGISTRY;
    const incoming = await Promise.all(
      wallets.map((w) =>
        c.readContract({ address: registry, abi: DELEGATE_REGISTRY_ABI, functionName: "getIncomingDelegations", args: [w] }).catch((error: unknown) => {
          if (error instanceof BaseError && error.walk((e) => e instanceof ContractFunctionZeroDataError)) return [];
          throw new EligibilitySourceError("On-chain read failed: delegate registry getIncomingDelegations", { cause: error });
        }),
      ),
    );
    const vaults = new Map<Address, { delegates: Set<Address>; tokens: Set<string>; entries: string[] }>();
    for (const d of incoming.flat()) {
      const from = d.from.toLowerCase() as Address;
      if (d.type_ === 0 || d.rights !== FULL_RIGHTS || wallets.includes(from)) continue;
      const vault = vaults.get(from) ?? { delegates: new Set<Address>(), tokens: new Set<string>(), entries: [] };
      const to = d.to.toLowerCase() as Address;
      vault.delegates.add(to);
      if (d.type_ === DELEGATION_ERC721) vault.tokens.add(`${d.contract_.toLowerCase()}:${d.tokenId}`);
      vault.entries.push(`${d.type_}>${to}:${d.contract_.toLowerCase()}:${d.tokenId}:${d.amount}`);
      vaults.set(from, vault);
    }
    return [...vaults].slice(0, MAX_VAULTS).map(([address, v]) => ({ address, delegates: [...v.delegates], tokens: v.tokens, entries: v.entries }));
  };

  /** What the vaults lend toward one leaf: only what each delegated, and at most what it holds. */
  const lentByVaults = async (leaf: ExternalLeaf, vaults: readonly Vault[]): Promise<bigint> => {
    if (vaults.length === 0) return 0n;
    // Attestations are about the wallet that carries them: a vault lends none.
    if (leaf.type === "coinbaseVerified") return 0n;
    const c = client(chainOf(leaf));
    const registry = ZKSYNC_CHAINS.has(chainOf(leaf)) ? DELEGATE_REGISTRY_ZKSYNC : DELEGATE_REGISTRY;
    const check = <T>(what: string, call: () => Promise<T>) => read(`delegate registry ${what}`, call);
    const contractWide = (v: Vault, contract: Address) =>
      Promise.all(v.delegates.map((d) => check("checkDelegateForContract", () => c.readContract({ address: registry, abi: DELEGATE_REGISTRY_ABI, functionName: "checkDelegateForContract", args: [d, v.address, contract, FULL_RIGHTS] })))).then((r) => r.some(Boolean));
    // Amount delegations are upper bounds per delegate; type(uint256).max means all.
    const delegatedAmount = (amounts: bigint[]) => amounts.reduce((a, b) => (a + b > MAX_AMOUNT ? MAX_AMOUNT : a + b), 0n);
    const min = (a: bigint, b: bigint) => (a < b ? a : b);
    const perVault = await Promise.all(
      vaults.map(async (v): Promise<bigint> => {
        switch (leaf.type) {
          case "erc20": {
            const [balance, ...amounts] = await Promise.all([
              read("erc20 balanceOf", () => c.readContract({ address: leaf.token, abi: ERC20, functionName: "balanceOf", args: [v.address] })),
              ...v.delegates.map((d) => check("checkDelegateForERC20", () => c.readContract({ address: registry, abi: DELEGATE_REGISTRY_ABI, functionName: "checkDelegateForERC20", args: [d, v.address, leaf.token, FULL_RIGHTS] }))),
            ]);
            return min(balance, delegatedAmount(amounts));
          }
          case "erc1155": {
            if (leaf.tokenIds) {
              // A range counts a vault that lent the whole contract (or wallet); per-id amount delegations are not summed over ranges.
              const ids = idsOf(leaf.tokenIds);
              const [wide, balances] = await Promise.all([
                contractWide(v, leaf.contract),
                read("erc1155 balanceOfBatch", () => c.readContract({ address: leaf.contract, abi: ERC1155, functionName: "balanceOfBatch", args: [ids.map(() => v.address), ids] })),
              ]);
              return wide ? sum(balances) : 0n;
            }
            const id = BigInt(leaf.tokenId ?? "0");
            const [balance, ...amounts] = await Promise.all([
              read("erc1155 balanceOf", () => c.readContract({ address: leaf.contract, abi: ERC1155, functionName: "balanceOf", args: [v.address, id] })),
              ...v.delegates.map((d) => check("checkDelegateForERC1155", () => c.readContract({ address: registry, abi: DELEGATE_REGISTRY_ABI, functionName: "checkDelegateForERC1155", args: [d, v.address, leaf.contract, id, FULL_RIGHTS] }))),
            ]);
            return min(balance, delegatedAmount(amounts));
          }
          case "erc721": {
            const lentToken = (id: bigint) =>
              Promise.all(v.delegates.map((d) => check("checkDelegateForERC721", () => c.readContract({ address: registry, abi: DELEGATE_REGISTRY_ABI, functionName: "checkDelegateForERC721", args: [d, v.address, leaf.contract, id, FULL_RIGHTS] })))).then((r) => r.some(Boolean));
            if (leaf.tokenId !== undefined) {
              const id = BigInt(leaf.tokenId);
              const [owns, lent] = await Promise.all([ownsToken(c, leaf.contract, id, [v.address]), lentToken(id)]);
              return owns && lent ? 1n : 0n;
            }
            const wide = await contractWide(v, leaf.contract);
            const tokenIds = [...v.tokens].filter((t) => t.startsWith(`${leaf.contract}:`)).map((t) => BigInt(t.split(":")[1]!));
            if (leaf.tokenIds) {
              const from = BigInt(leaf.tokenIds.from);
              const to = BigInt(leaf.tokenIds.to);
              const ids = wide ? idsOf(leaf.tokenIds) : tokenIds.filter((id) => id >= from && id <= to);
              const owned = await Promise.all(ids.map((id) => ownsToken(c, leaf.contract, id, [v.address])));
              return BigInt(owned.filter(Boolean).length);
            }
            if (wide) return read("erc721 balanceOf", () => c.readContract({ address: leaf.contract, abi: ERC721, functionName: "balanceOf", args: [v.address] }));
            // Single tokens lent: each counts once, if the vault still holds it.
            const owned = await Promise.all(tokenIds.map((id) => ownsToken(c, leaf.contract, id, [v.address])));
            return BigInt(owned.filter(Boolean).length);
          }
          case "poap":
            return (await contractWide(v, POAP_CONTRACT)) && (await holdsPoap(c, v.address, BigInt(leaf.eventId))) ? 1n : 0n;
        }
      }),
    );
    return sum(perVault);
  };

  const readLeaf = async (leaf: ExternalLeaf, wallets: readonly Address[]): Promise<Holding> => {
    switch (leaf.type) {
      case "erc20": {
        const c = client(leaf.chainId);
        const [decimals, ...balances] = await Promise.all([
          leaf.decimals !== undefined ? Promise.resolve(leaf.decimals) : read("erc20 decimals", () => c.readContract({ address: leaf.token, abi: ERC20, functionName: "decimals" })),
          ...wallets.map((w) => read("erc20 balanceOf", () => c.readContract({ address: leaf.token, abi: ERC20, functionName: "balanceOf", args: [w] }))),
        ]);
        return { held: sum(balances), needed: parseUnits(leaf.minBalance, decimals) };
      }
      case "erc721": {
        const c = client(leaf.chainId);
        if (leaf.tokenId !== undefined) {
          return { held: (await ownsToken(c, leaf.contract, BigInt(leaf.tokenId), wallets)) ? 1n : 0n, needed: 1n };
        }
        if (leaf.tokenIds) {
          // Any ERC-721 answers ownerOf (enumeration is optional): one read per id, whoever of the wallets holds it.
          const owned = await Promise.all(idsOf(leaf.tokenIds).map((id) => ownsToken(c, leaf.contract, id, wallets)));
          return { held: BigInt(owned.filter(Boolean).length), needed: BigInt(leaf.minCount) };
        }
        const counts = await Promise.all(
          wallets.map((w) => read("erc721 balanceOf", () => c.readContract({ address: leaf.contract, abi: ERC721, functionName: "balanceOf", args: [w] }))),
        );
        return { held: sum(counts), needed: BigInt(leaf.minCount) };
      }
      case "erc1155": {
        const c = client(leaf.chainId);
        if (leaf.tokenIds) {
          const ids = idsOf(leaf.tokenIds);
          const perWallet = await Promise.all(
            wallets.map((w) =>
              read("erc1155 balanceOfBatch", () =>
                c.readContract({ address: leaf.contract, abi: ERC1155, functionName: "balanceOfBatch", args: [ids.map(() => w), ids] }),
              ),
            ),
          );
          return { held: sum(perWallet.map(sum)), needed: BigInt(leaf.minBalance) };
        }
        const id = BigInt(leaf.tokenId ?? "0");
        const balances = await Promise.all(
          wallets.map((w) => read("erc1155 balanceOf", () => c.readContract({ address: leaf.contract, abi: ERC1155, functionName: "balanceOf", args: [w, id] }))),
        );
        return { held: sum(balances), needed: BigInt(leaf.minBalance) };
      }
      case "poap": {
        const c = client(poapChain(leaf));
        const found = await Promise.all(wallets.map((w) => holdsPoap(c, w, BigInt(leaf.eventId))));
        return { held: found.some(Boolean) ? 1n : 0n, needed: 1n };
      }
      case "coinbaseVerified": {
        const c = client(BASE_CHAIN_ID);
        const found = await Promise.all(wallets.map((w) => coinbaseVerified(c, leaf, w)));
        return { held: found.some(Boolean) ? 1n : 0n, needed: 1n };
      }
    }
  };

  return {
    async read(list, wallets) {
      for (const leaf of list) client(chainOf(leaf));
      const chains = [...new Set(list.map(chainOf))];
      // The wallets' own holdings and the vault lookup travel in the first batch; the vaults' holdings, if any, in a second.
      const [own, vaultLists] = await Promise.all([Promise.all(list.map((leaf) => readLeaf(leaf, wallets))), Promise.all(chains.map((id) => vaultsOn(id, wallets)))]);
      const vaults = new Map(chains.map((id, i) => [id, vaultLists[i]!]));
      const lent = await Promise.all(list.map((leaf) => lentByVaults(leaf, vaults.get(chainOf(leaf)) ?? [])));
      const holdings = own.map((holding, i) => {
        const leaf = list[i]!;
        // A POAP or one token id counts once, whoever holds it.
        const once = leaf.type === "poap" || (leaf.type === "erc721" && leaf.tokenId !== undefined);
        const held = once ? (holding.held > 0n || lent[i]! > 0n ? 1n : 0n) : holding.held + lent[i]!;
        return { held, needed: holding.needed };
      });
      return { holdings, vaults: fingerprint(chains, vaultLists) };
    },

    async vaults(list, wallets) {
      const chains = [...new Set(list.map(chainOf))];
      return fingerprint(chains, await Promise.all(chains.map((id) => vaultsOn(id, wallets))));
    },

    async prepare(rules) {
      checkRuleValues(rules);
      const located = leafPaths(rules).filter((l): l is { leaf: ExternalLeaf; path: string } => l.leaf.type !== "open" && l.leaf.type !== "allowlist");
      for (const { leaf, path } of located) {
        const chainId = chainOf(leaf);
        if (!options.rpcUrls.has(chainId)) {
          throw new InvalidRequestError(`No RPC for ${chainName(chainId)}: set RPC_URL_${chainId}`, [{ path, message: `set RPC_URL_${chainId}` }]);
        }
      }
      // Every leaf's reads start in the same tick, so they travel as one JSON-RPC batch per chain.
      const prepared = await Promise.all(
        located.map(async ({ leaf, path }) => {
          const chainId = chainOf(leaf);
          return [leaf, await prepareLeaf(client(chainId), chainId, leaf, path)] as const;
        }),
      );
      const byLeaf = new Map<LeafRule, LeafRule>(prepared);
      return mapLeaves(rules, (leaf) => byLeaf.get(leaf) ?? leaf);
    },
  };
}

/** An address no token treats specially (not the zero address, which OpenZeppelin's balanceOf refuses): create's probe reads are made for it. */
export const PROBE_ADDRESS = "0x000000000000000000000000000000000000dEaD" as const;

/** What a contract answered one call at create: its return data, or how its execution failed. */
type Answer = { readonly data: Hex } | { readonly failed: string };

/**
 * Reads what create needs of one leaf, in one round: the code at the address, then the rule's own read for
 * {@link PROBE_ADDRESS} (and for ERC-721 by id, `ownerOf(tokenId)`), plus the labels (`symbol`, `name`,
 * `decimals`). A chain that answers with something the rule could never use is a 400 naming the call.
 * @throws {InvalidRequestError} the contract is missing or cannot serve the rule.
 * @throws {EligibilitySourceError} the chain could not be reached (transport failure, timeout, rate limit).
 */
async function prepareLeaf(c: PublicClient, chainId: number, leaf: ExternalLeaf, path: string): Promise<ExternalLeaf> {
  const where = leaf.type === "erc20" ? leaf.token : leaf.type === "poap" ? POAP_CONTRACT : leaf.type === "coinbaseVerified" ? COINBASE_INDEXER : leaf.contract;
  const ask = (data: Hex): Promise<Answer> =>
    c.call({ to: where, data }).then(
      (result) => ({ data: result.data ?? "0x" }),
      (error: unknown) => {
        if (isTransportFailure(error)) throw new EligibilitySourceError(`On-chain read failed at create: ${where} on ${chainName(chainId)}`, { cause: error });
        return { failed: executionFailure(error) };
      },
    );
  const kind = { erc20: "an ERC-20 token", erc721: "an ERC-721 collection", erc1155: "an ERC-1155 contract", poap: "the POAP contract", coinbaseVerified: "Coinbase's attestation indexer" }[leaf.type];
  const refuse = (problem: string, at = path): never => {
    throw new InvalidRequestError(`${where} on ${chainName(chainId)} does not behave like ${kind}: ${problem}`, [{ path: at, message: problem }]);
  };
  const code = c.getCode({ address: where }).catch((cause: unknown) => {
    throw new EligibilitySourceError(`On-chain read failed at create: getCode ${where} on ${chainName(chainId)}`, { cause });
  });
  const calls = ((): Promise<Answer>[] => {
    switch (leaf.type) {
      case "erc20":
        return [
          ask(encodeFunctionData({ abi: ERC20, functionName: "balanceOf", args: [PROBE_ADDRESS] })),
          ask(encodeFunctionData({ abi: ERC20, functionName: "decimals" })),
          ask(encodeFunctionData({ abi: ERC20, functionName: "symbol" })),
          ask(encodeFunctionData({ abi: ERC20, functionName: "name" })),
        ];
      case "erc721": {
        const byId = leaf.tokenId ?? leaf.tokenIds?.from;
        return [
          byId !== undefined
            ? ask(encodeFunctionData({ abi: ERC721, functionName: "ownerOf", args: [BigInt(byId)] }))
            : ask(encodeFunctionData({ abi: ERC721, functionName: "balanceOf", args: [PROBE_ADDRESS] })),
          ask(encodeFunctionData({ abi: ERC721, functionName: "name" })),
        ];
      }
      case "erc1155":
        return leaf.tokenIds
          ? [ask(encodeFunctionData({ abi: ERC1155, functionName: "balanceOfBatch", args: [[PROBE_ADDRESS], [BigInt(leaf.tokenIds.from)]] }))]
          : [ask(encodeFunctionData({ abi: ERC1155, functionName: "balanceOf", args: [PROBE_ADDRESS, BigInt(leaf.tokenId ?? "0")] }))];
      case "poap":
        return [ask(encodeFunctionData({ abi: POAP, functionName: "balanceOf", args: [PROBE_ADDRESS] }))];
      case "coinbaseVerified":
        return [ask(encodeFunctionData({ abi: COINBASE_INDEXER_ABI, functionName: "getAttestationUid", args: [PROBE_ADDRESS, COINBASE_SCHEMAS[leaf.attestation]] }))];
    }
  })();
  const [bytecode, probe, ...rest] = await Promise.all([code, ...calls]);
  if (!bytecode || bytecode === "0x") {
    throw new InvalidRequestError(`${where} is not a contract on ${chainName(chainId)}`, [{ path, message: `no contract at ${where}` }]);
  }
  switch (leaf.type) {
    case "erc20": {
      const [decimalsAnswer, symbolAnswer, nameAnswer] = rest;
      const balance = word(probe!, "balanceOf(address)");
      if ("problem" in balance) return refuse(balance.problem);
      const read = word(decimalsAnswer!, "decimals()");
      if ("problem" in read) return refuse(read.problem);
      if (read.value > BigInt(MAX_DECIMALS)) {
        return refuse(`decimals() is ${read.value}; a token can have at most ${MAX_DECIMALS} (one whole token must fit in a uint256)`);
      }
      const decimals = Number(read.value);
      if ((leaf.minBalance.split(".")[1]?.length ?? 0) > decimals) {
        throw new InvalidRequestError(`minBalance has more decimals than the token (${decimals})`, [
          { path: `${path}.minBalance`, message: `at most ${decimals} decimals` },
        ]);
      }
      if (parseUnits(leaf.minBalance, decimals) > MAX_UINT256) {
        throw new InvalidRequestError(`minBalance ${leaf.minBalance} is more than any balance of this token can be (2^256 - 1 units of 10^-${decimals})`, [
          { path: `${path}.minBalance`, message: "more than a uint256 balance can hold" },
        ]);
      }
      const { symbol: _symbol, decimals: _decimals, ...base } = leaf;
      // EIP-20 makes symbol() and name() optional: without a readable one, people read the token's address.
      const symbol = readableText(symbolAnswer!, 32) ?? readableText(nameAnswer!, 64);
      return { ...base, decimals, ...(symbol !== undefined ? { symbol } : {}) };
    }
    case "erc721": {
      if (leaf.tokenId !== undefined || leaf.tokenIds) {
        // ownerOf reverts for a token nobody owns (not minted yet, or burned): join reads that as "not the owner".
        if ("data" in probe!) {
          const owner = word(probe, "ownerOf(uint256)");
          if ("problem" in owner) return refuse(owner.problem);
        }
      } else {
        const count = word(probe!, "balanceOf(address)");
        if ("problem" in count) return refuse(count.problem);
      }
      const { name: _name, ...base } = leaf;
      const name = readableText(rest[0]!, 64);
      return { ...base, ...(name !== undefined ? { name } : {}) };
    }
    case "erc1155": {
      if (leaf.tokenIds) {
        // A uint256[] of one: offset, length, value.
        const answer = probe!;
        if ("failed" in answer) return refuse(`balanceOfBatch(address[],uint256[]) ${answer.failed}`);
        try {
          const [balances] = decodeAbiParameters([{ type: "uint256[]" }], answer.data);
          if (balances.length !== 1) return refuse(`balanceOfBatch(address[],uint256[]) answered ${balances.length} balances for 1 id`);
        } catch {
          return refuse("balanceOfBatch(address[],uint256[]) answered something that is not a uint256[]");
        }
        return leaf;
      }
      const balance = word(probe!, "balanceOf(address,uint256)");
      if ("problem" in balance) return refuse(balance.problem);
      return leaf;
    }
    case "poap": {
      const balance = word(probe!, "balanceOf(address)");
      if ("problem" in balance) return refuse(balance.problem);
      return leaf;
    }
    case "coinbaseVerified": {
      const uid = word(probe!, "getAttestationUid(address,bytes32)");
      if ("problem" in uid) return refuse(uid.problem);
      return leaf;
    }
  }
}

/** The first 32-byte word of an answer as a uint256, or what is wrong with the answer. */
function word(answer: Answer, call: string): { value: bigint } | { problem: string } {
  if ("failed" in answer) return { problem: `${call} ${answer.failed}` };
  const bytes = size(answer.data);
  if (bytes === 0) return { problem: `${call} answered no data` };
  if (bytes < 32) return { problem: `${call} answered ${bytes} bytes, less than one 32-byte word` };
  return { value: hexToBigInt(slice(answer.data, 0, 32)) };
}

// Control, format (bidi overrides, zero-width), private-use and unassigned characters, and U+FFFD.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\uFFFD]/u;

/**
 * A `symbol()`/`name()` answer as people should read it: an ABI string, or a bytes32 (MKR, SAI and other
 * early tokens) with its zero padding trimmed. `undefined` when there is none worth showing: the call failed,
 * the answer does not decode, is not UTF-8, is empty, or holds unprintable characters.
 */
function readableText(answer: Answer, maxLength: number): string | undefined {
  if ("failed" in answer) return undefined;
  let raw: Uint8Array;
  // An ABI string takes at least two words (offset, length), so a single word can only be a bytes32.
  if (size(answer.data) === 32) raw = hexToBytes(answer.data);
  else {
    try {
      raw = hexToBytes(decodeAbiParameters([{ type: "bytes" }], answer.data)[0]);
    } catch {
      return undefined;
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    return undefined;
  }
  text = text.replaceAll("\0", "").replace(/\s+/gu, " ").trim();
  if (text === "" || UNPRINTABLE.test(text)) return undefined;
  return Array.from(text).slice(0, maxLength).join("");
}

// Viem's reading of which failures are worth retrying (its `shouldRetry`): rate limits and unknown errors.
const TRANSIENT_RPC_CODES = new Set([-1, 429, LimitExceededRpcError.code, -32007, ResourceUnavailableRpcError.code]);
// Anvil reports an INVALID opcode or running out of gas as -32603 "EVM error …": the contract's answer, not the node's trouble.
const EVM_FAILURE = /revert|opcode|out of gas|invalid jump|stack (?:underflow|overflow)|evm error/i;
// What load-balanced providers answer, under various codes, while a node lags or sheds load.
const BUSY_NODE = /header not found|rate limit|too many requests|timed? ?out|try again|temporarily unavailable/i;

/**
 * Whether a failed eth_call is the way to the chain failing (HTTP error or unreachable, timeout, a rate limit,
 * the node's internal error or a busy node) rather than the chain answering: only those are worth a retry.
 * Any other JSON-RPC error is the node's answer and is quoted to the operator.
 */
function isTransportFailure(error: unknown): boolean {
  if (!(error instanceof BaseError)) return true;
  if (error.walk((e) => e instanceof ExecutionRevertedError)) return false;
  const evmFailure = EVM_FAILURE.test(error.details);
  if (!evmFailure && BUSY_NODE.test(error.details)) return true;
  return Boolean(
    error.walk((e) => {
      if (e instanceof HttpRequestError || e instanceof TimeoutError || e instanceof WebSocketRequestError || e instanceof SocketClosedError) return true;
      if (e instanceof RpcRequestError && e.status !== undefined) return true;
      const code = (e as { code?: unknown } | null)?.code;
      if (typeof code !== "number") return false;
      return TRANSIENT_RPC_CODES.has(code) || (code === InternalRpcError.code && !evmFailure);
    }),
  );
}

/** How a call's execution failed, in a few words for the operator ("reverted", "failed: EVM error OutOfGas"). */
function executionFailure(error: unknown): string {
  if (error instanceof BaseError && error.walk((e) => e instanceof ExecutionRevertedError)) return "reverted";
  const details = error instanceof BaseError ? error.details : String(error);
  return `failed: ${details.replace(/[^\x20-\x7e]+/g, " ").trim().slice(0, 120)}`;
}

function isRevert(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  return error.walk((e) => e instanceof ContractFunctionRevertedError) instanceof ContractFunctionRevertedError;
}
