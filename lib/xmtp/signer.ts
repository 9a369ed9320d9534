import type { IdentifierKind, Signer } from "@xmtp/node-sdk";
import { hexToBytes } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { Address } from "../shared/address.js";

// The SDK's enums are ambient `const enum`s, which isolated-module builds cannot read: use their values.
/** `IdentifierKind.Ethereum`. */
export const ETHEREUM_IDENTIFIER = 0 as IdentifierKind.Ethereum;

/** An XMTP EOA signer for the backend wallet, and its lowercase address. */
export function createWalletSigner(walletKey: `0x${string}`): { signer: Signer; address: Address } {
  const account = privateKeyToAccount(walletKey);
  const address = account.address.toLowerCase() as Address;
  const signer: Signer = {
    type: "EOA",
    getIdentifier: () => ({ identifier: address, identifierKind: ETHEREUM_IDENTIFIER }),
    signMessage: async (message: string) => hexToBytes(await account.signMessage({ message })),
  };
  return { signer, address };
}
