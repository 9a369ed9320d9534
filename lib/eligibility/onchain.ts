import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  http,
  parseAbi,
  parseUnits,
  type PublicClient,
} from "viem";
import { InvalidRequestError } from "../errors.js";
import type { Address } from "../xmtp/port.js";
import { EligibilitySourceError, chainName, type ExternalLeaf, type HoldingsSource } from "./evaluate.js";
import { leaves, type Rules } from "./rules.js";

/** The POAP contract (same address on Gnosis and Ethereum). */
export const POAP_CONTRACT = "0x22c1f6050e56d2876009903609a2cc3fef83b415" as const;
/** POAPs of one wallet scanned per decision (a wallet holding more is checked on its first ones only). */
export const POAP_SCAN_LIMIT = 100;
const POAP_FIRST_BATCH = 20;

const ERC20 = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function decimals() view returns (uint8)",
  "function symbol() view returns (string)",
]);
const ERC721 = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function ownerOf(uint256) view returns (address)",
  "function name() view returns (string)",
]);
const ERC1155 = parseAbi(["function balanceOf(address, uint256) view returns (uint256)"]);
const POAP = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function tokenDetailsOfOwnerByIndex(address, uint256) view returns (uint256 tokenId, uint256 eventId)",
]);

/** Options of {@link createOnchainSource}. */
export interface OnchainOptions {
  /** JSON-RPC URL per chain id (from `RPC_URL_<chainId>`). */
  readonly rpcUrls: ReadonlyMap<number, string>;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
}

/** Reads holdings from the chains over JSON-RPC with viem. Calls for one decision go out as one JSON-RPC batch per chain. */
export function createOnchainSource(options: OnchainOptions): HoldingsSource & {
  /** Validates rules for create and fills in what is read on chain (symbol, decimals, name). @throws {InvalidRequestError} */
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
        transport: http(url, {
          batch: { batchSize: 200, wait: 0 },
          retryCount: 1,
          timeout: options.timeoutMs ?? 8000,
          ...(options.fetch ? { fetchFn: options.fetch } : {}),
        }),
      });
      clients.set(chainId, c);
    }
    return c;
  };
  const poapChain = (leaf: Extract<ExternalLeaf, { type: "poap" }>) => leaf.chainId ?? (options.rpcUrls.has(100) ? 100 : options.rpcUrls.has(1) ? 1 : 100);

  const read = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (cause) {
      throw new EligibilitySourceError(`On-chain read failed: ${what}`, { cause });
    }
  };

  const checkLeaf = async (leaf: ExternalLeaf, owner: Address): Promise<boolean> => {
    switch (leaf.type) {
      case "erc20": {
        const c = client(leaf.chainId);
        const [balance, decimals] = await Promise.all([
          read("erc20 balanceOf", () => c.readContract({ address: leaf.token, abi: ERC20, functionName: "balanceOf", args: [owner] })),
          leaf.decimals !== undefined ? Promise.resolve(leaf.decimals) : read("erc20 decimals", () => c.readContract({ address: leaf.token, abi: ERC20, functionName: "decimals" })),
        ]);
        return balance >= parseUnits(leaf.minBalance, decimals);
      }
      case "erc721": {
        const c = client(leaf.chainId);
        if (leaf.tokenId !== undefined) {
          try {
            const holder = await c.readContract({ address: leaf.contract, abi: ERC721, functionName: "ownerOf", args: [BigInt(leaf.tokenId)] });
            return holder.toLowerCase() === owner;
          } catch (error) {
            // ERC-721 says ownerOf reverts for a token nobody owns: that is an answer, not a failure.
            if (isRevert(error)) return false;
            throw new EligibilitySourceError("On-chain read failed: erc721 ownerOf", { cause: error });
          }
        }
        const count = await read("erc721 balanceOf", () => c.readContract({ address: leaf.contract, abi: ERC721, functionName: "balanceOf", args: [owner] }));
        return count >= BigInt(leaf.minCount);
      }
      case "erc1155": {
        const c = client(leaf.chainId);
        const balance = await read("erc1155 balanceOf", () =>
          c.readContract({ address: leaf.contract, abi: ERC1155, functionName: "balanceOf", args: [owner, BigInt(leaf.tokenId)] }),
        );
        return balance >= BigInt(leaf.minBalance);
      }
      case "poap": {
        const c = client(poapChain(leaf));
        const eventId = BigInt(leaf.eventId);
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
      }
    }
  };

  return {
    async check(list, owner) {
      for (const leaf of list) client(leaf.type === "poap" ? poapChain(leaf) : leaf.chainId);
      return Promise.all(list.map((leaf) => checkLeaf(leaf, owner)));
    },

    async prepare(rules) {
      const meta = new Map<ExternalLeaf, Partial<{ symbol: string; decimals: number; name: string }>>();
      await Promise.all(
        leaves(rules).map(async (leaf) => {
          if (leaf.type === "open" || leaf.type === "allowlist") return;
          const chainId = leaf.type === "poap" ? poapChain(leaf) : leaf.chainId;
          if (!options.rpcUrls.has(chainId)) {
            throw new InvalidRequestError(`No RPC for ${chainName(chainId)}: set RPC_URL_${chainId}`, [{ path: "rules", message: `set RPC_URL_${chainId}` }]);
          }
          const c = client(chainId);
          const where = leaf.type === "erc20" ? leaf.token : leaf.type === "poap" ? POAP_CONTRACT : leaf.contract;
          const code = await read("getCode", () => c.getCode({ address: where }));
          if (!code || code === "0x") {
            throw new InvalidRequestError(`${where} is not a contract on ${chainName(chainId)}`, [{ path: "rules", message: `no contract at ${where}` }]);
          }
          try {
            if (leaf.type === "erc20") {
              const [symbol, decimals] = await Promise.all([
                c.readContract({ address: leaf.token, abi: ERC20, functionName: "symbol" }),
                c.readContract({ address: leaf.token, abi: ERC20, functionName: "decimals" }),
              ]);
              parseUnits(leaf.minBalance, decimals);
              if ((leaf.minBalance.split(".")[1]?.length ?? 0) > decimals) {
                throw new InvalidRequestError(`minBalance has more decimals than the token (${decimals})`);
              }
              meta.set(leaf, { symbol: symbol.slice(0, 32), decimals });
            } else if (leaf.type === "erc721") {
              const name = await c.readContract({ address: leaf.contract, abi: ERC721, functionName: "name" }).catch(() => undefined);
              if (name) meta.set(leaf, { name: name.slice(0, 64) });
            }
          } catch (error) {
            if (error instanceof InvalidRequestError) throw error;
            if (isRevert(error)) throw new InvalidRequestError(`${where} does not behave like an ${leaf.type.toUpperCase()} token on ${chainName(chainId)}`);
            throw new EligibilitySourceError(`On-chain read failed at create`, { cause: error });
          }
        }),
      );
      return enrich(rules, meta);
    },
  };
}

function enrich(rules: Rules, meta: ReadonlyMap<ExternalLeaf, object>): Rules {
  if ("all" in rules) return { all: rules.all.map((r) => enrich(r, meta)) };
  if ("any" in rules) return { any: rules.any.map((r) => enrich(r, meta)) };
  const extra = meta.get(rules as ExternalLeaf);
  return extra ? ({ ...rules, ...extra }) : rules;
}

function isRevert(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  return error.walk((e) => e instanceof ContractFunctionRevertedError) instanceof ContractFunctionRevertedError;
}
