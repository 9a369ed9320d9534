import { createPublicClient, http, isAddressEqual, isErc6492Signature, recoverMessageAddress, type Hex, type PublicClient } from "viem";
import { DependencyUnavailableError } from "../shared/errors.js";
import { chainName } from "../shared/chains.js";
import type { Address } from "../shared/address.js";

/** Whether a signature over a message belongs to an address. */
export type SignatureCheck =
  | { readonly valid: true; readonly kind: "eoa" | "contract" }
  | { readonly valid: false; readonly reason: "mismatch" | "no-rpc" }
  /** Not a key's signature, and the group does not check smart-contract wallets on this chain (`allowed`, maybe none). */
  | { readonly valid: false; readonly reason: "chain-not-allowed"; readonly allowed: readonly number[] };

/** Checks personal_sign signatures (EIP-191) of wallets. */
export interface SignatureVerifier {
  /**
   * Checks an EOA signature offline; otherwise asks the chain (EIP-1271 for deployed smart-contract wallets,
   * EIP-6492 for counterfactual ones) — only when `contractChains` allows `chainId`.
   * @throws {SignatureCheckUnavailableError} the chain's RPC failed; the person may retry (503).
   */
  verify(input: { address: Address; message: string; signature: Hex; chainId: number; contractChains: ReadonlySet<number> | "any" }): Promise<SignatureCheck>;
}

/** The chain could not be asked whether a smart-contract wallet signed (503). */
export class SignatureCheckUnavailableError extends DependencyUnavailableError {
  override readonly name = "SignatureCheckUnavailableError";
  override readonly publicMessage = "Could not check the wallet's signature right now; try again";
}

/** A verifier over the configured RPCs (`RPC_URL_<chainId>`), one viem client per chain. */
export function createSignatureVerifier(options: {
  rpcUrls: ReadonlyMap<number, string>;
  fetch?: typeof fetch;
  timeoutMs?: number;
}): SignatureVerifier {
  const clients = new Map<number, PublicClient>();
  const client = (chainId: number): PublicClient | null => {
    const url = options.rpcUrls.get(chainId);
    if (!url) return null;
    let c = clients.get(chainId);
    if (!c) {
      c = createPublicClient({
        // A wallet contract may revert with OffchainLookup (EIP-3668) to make the caller fetch URLs it names: never here.
        ccipRead: false,
        transport: http(url, { retryCount: 1, timeout: options.timeoutMs ?? 8000, ...(options.fetch ? { fetchFn: options.fetch } : {}) }),
      });
      clients.set(chainId, c);
    }
    return c;
  };

  return {
    async verify({ address, message, signature, chainId, contractChains }) {
      // Most people sign with a key: that needs no network at all.
      try {
        const signer = await recoverMessageAddress({ message, signature });
        if (isAddressEqual(signer, address)) return { valid: true, kind: "eoa" };
      } catch {
        // Not a 65-byte ECDSA signature: a smart-contract wallet's, or garbage; the chain decides.
      }
      if (contractChains !== "any" && !contractChains.has(chainId)) return { valid: false, reason: "chain-not-allowed", allowed: [...contractChains] };
      const rpc = client(chainId);
      if (!rpc) return { valid: false, reason: "no-rpc" };
      // viem reports a failed eth_call as "not valid", so the RPC is asked something plain first:
      // a dead RPC is then a retryable 503, not a wrong "signature does not match".
      let code: Hex | undefined;
      try {
        code = await rpc.getCode({ address });
      } catch (cause) {
        throw new SignatureCheckUnavailableError(`Signature check on ${chainName(chainId)} failed`, { cause });
      }
      if ((code === undefined || code === "0x") && !isErc6492Signature(signature)) return { valid: false, reason: "mismatch" };
      try {
        // viem's verifyMessage runs the ERC-6492 universal validator in an eth_call: deployed
        // wallets answer isValidSignature (EIP-1271); undeployed ones are deployed in the call first.
        const ok = await rpc.verifyMessage({ address, message, signature });
        return ok ? { valid: true, kind: "contract" } : { valid: false, reason: "mismatch" };
      } catch (cause) {
        throw new SignatureCheckUnavailableError(`Signature check on ${chainName(chainId)} failed`, { cause });
      }
    },
  };
}
