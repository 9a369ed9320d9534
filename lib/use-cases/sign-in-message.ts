import * as v from "valibot";
import { parseSiweMessage } from "viem/siwe";
import { AddressSchema } from "../shared/address.js";
import { UnauthorizedError } from "../shared/errors.js";

/**
 * Checks what a signed EIP-4361 sign-in message says, before any store is asked: that it is one of ours (address,
 * nonce, domain, page and chain present), for this site and for a page `forPage` accepts, not expired and already
 * valid. The join page and the dashboard check their messages through this one place.
 * @returns the message's nonce (its challenge is looked up by it).
 * @throws {UnauthorizedError} with `notOurs` when the text is no sign-in message of ours, else saying what is wrong (401).
 */
export function checkSignInMessage(message: string, options: { publicUrl: string; now: Date; forPage: (uri: string) => boolean; notOurs: string }): string {
  const fields = parseSiweMessage(message);
  const address = v.safeParse(AddressSchema, fields.address ?? "");
  if (!address.success || !fields.nonce || !fields.domain || !fields.uri || fields.chainId === undefined) throw new UnauthorizedError(options.notOurs);
  const now = options.now.getTime();
  if (fields.domain !== new URL(options.publicUrl).host) throw new UnauthorizedError("This sign-in message is for another site");
  if (!options.forPage(fields.uri)) throw new UnauthorizedError("This sign-in message is for another page");
  if (!fields.expirationTime || !(fields.expirationTime.getTime() > now)) throw new UnauthorizedError("This sign-in message has expired; start again");
  if (fields.notBefore && fields.notBefore.getTime() > now) throw new UnauthorizedError("This sign-in message is not valid yet");
  return fields.nonce;
}
