import * as v from "valibot";
import { isAddress } from "viem";
import type { Address } from "../xmtp/port.js";

/**
 * An Ethereum address: 0x + 40 hex. Mixed case must carry a valid EIP-55 checksum
 * (a typo in a checksummed address is caught, not silently accepted). Output is lowercase.
 */
export const AddressSchema = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.regex(/^0x[0-9a-fA-F]{40}$/, "must be 0x followed by 40 hex characters"),
  v.check((raw) => isAddress(raw, { strict: true }), "has an invalid EIP-55 checksum"),
  v.transform((raw) => raw.toLowerCase() as Address),
);
