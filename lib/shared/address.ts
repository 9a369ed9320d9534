import * as v from "valibot";
import { isAddress } from "viem";

/** A lowercase 0x-prefixed Ethereum address. */
export type Address = `0x${string}`;

/** An address as this service stores it (lowercase), for validating what is read back from Redis. */
export const StoredAddressSchema = v.custom<Address>((raw) => typeof raw === "string" && /^0x[0-9a-f]{40}$/.test(raw), "must be a lowercase address");

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
