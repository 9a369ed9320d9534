import { getAddress, type Hex } from "viem";
import { createSiweMessage } from "viem/siwe";
import type { Address } from "../shared/address.js";
import type { Config } from "../config.js";
import { ForbiddenError, UnauthorizedError } from "../shared/errors.js";
import { checkSignInMessage } from "./sign-in-message.js";
import type { Logger } from "../shared/log.js";
import { enforceLimit, ipSubject, type RateLimiter } from "../stores/rate-limits.js";
import { CHALLENGE_TTL_SECONDS, hashMessage, type ChallengeStore } from "../stores/challenges.js";
import type { AdminSession, AdminSessionStore } from "../stores/admin-sessions.js";
import type { SignatureVerifier } from "../services/signature-verifier.js";

/** What signing in to the dashboard needs. */
export interface AdminSignInDeps {
  readonly config: Pick<Config, "publicUrl" | "admins">;
  /** Sign-in nonces of the dashboard, kept apart from the join page's (a message for one is never taken by the other). */
  readonly adminChallenges: ChallengeStore;
  readonly adminSessions: AdminSessionStore;
  readonly signatures: SignatureVerifier;
  readonly rateLimiter: RateLimiter;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** Who did an operator action: a signed-in admin (their address), or a script with `ADMIN_API_KEY`. */
export type Actor = Address | "api-key";

/** The dashboard's address, which every sign-in message names as its URI. */
export const dashboardUrl = (publicUrl: string): string => `${publicUrl}/admin`;

const STATEMENT = "Sign in to the group chats dashboard. Signing proves you own this wallet; it costs nothing and sends no transaction.";

/**
 * An EIP-4361 message for `address` to sign in to the dashboard, with a single-use nonce. Issued to anyone (it
 * does not tell who is an admin); only an admin's signature opens a session.
 * @throws {import("../shared/errors.js").RateLimitedError}
 */
export async function issueAdminChallenge(deps: AdminSignInDeps, input: { address: Address; chainId: number }, ip: string) {
  await enforceLimit(deps.rateLimiter, "adminSignInPerIp", `challenge|${ipSubject(ip)}`);
  const issuedAt = deps.now();
  const expiresAt = new Date(issuedAt.getTime() + CHALLENGE_TTL_SECONDS * 1000);
  const nonce = deps.adminChallenges.newNonce();
  const message = createSiweMessage({
    domain: new URL(deps.config.publicUrl).host,
    address: getAddress(input.address),
    statement: STATEMENT,
    uri: dashboardUrl(deps.config.publicUrl),
    version: "1",
    chainId: input.chainId,
    nonce,
    issuedAt,
    expirationTime: expiresAt,
  });
  await deps.adminChallenges.save(nonce, {
    linkId: "admin",
    groupId: "",
    address: input.address,
    chainId: input.chainId,
    messageHash: hashMessage(message),
    expiresAt: expiresAt.toISOString(),
  });
  return { message, expiresAt: expiresAt.toISOString() };
}

/**
 * Checks a signed dashboard sign-in message exactly as the join page checks its own (issued here, unused, this
 * domain and page, not expired, signed by its address: a key offline, a smart-contract wallet through EIP-1271/6492
 * on the chain its `ADMIN_ADDRESSES` entry names), uses the nonce, and opens a session for an admin.
 * @throws {UnauthorizedError} the message or signature is not accepted (401).
 * @throws {ForbiddenError} signed correctly, but the address is not an admin (403).
 * @throws {import("../services/signature-verifier.js").SignatureCheckUnavailableError} the chain could not be asked (503).
 */
export async function signInAdmin(deps: AdminSignInDeps, input: { message: string; signature: string }, ip: string): Promise<{ token: string; session: AdminSession }> {
  const { publicUrl } = deps.config;
  await enforceLimit(deps.rateLimiter, "adminSignInPerIp", `sign-in|${ipSubject(ip)}`);
  const now = deps.now();
  const nonce = checkSignInMessage(input.message, {
    publicUrl,
    now,
    forPage: (uri) => uri === dashboardUrl(publicUrl),
    notOurs: "This is not a sign-in message from this dashboard; start again",
  });

  const issued = await deps.adminChallenges.peek(nonce);
  if (issued.state === "used") throw new UnauthorizedError("This sign-in message was already used; start again");
  if (issued.state === "unknown" || issued.challenge.messageHash !== hashMessage(input.message)) {
    throw new UnauthorizedError("This sign-in message was not issued here or has expired; start again");
  }
  const { challenge } = issued;
  const entries = deps.config.admins.filter((a) => a.address === challenge.address);
  // A wallet contract is trusted only on the chain its entry names: the same address elsewhere may be someone else's.
  const contractChains = new Set(entries.flatMap((a) => (a.contractChainId === null ? [] : [a.contractChainId])));
  const check = await deps.signatures.verify({ address: challenge.address, message: input.message, signature: input.signature as Hex, chainId: challenge.chainId, contractChains });
  if (!check.valid) throw new UnauthorizedError(`The signature is not from ${getAddress(challenge.address)}${check.reason === "chain-not-allowed" && entries.length > 0 ? " (smart-contract wallets are checked only on the chain named in ADMIN_ADDRESSES)" : ""}`);
  const used = await deps.adminChallenges.consume(nonce);
  if (used !== "ok") throw new UnauthorizedError("This sign-in message was already used or has expired; start again");
  if (entries.length === 0) {
    deps.logger.warn("admin_sign_in_refused", { address: challenge.address });
    throw new ForbiddenError(`${getAddress(challenge.address)} is not an admin of this deployment`);
  }
  const opened = await deps.adminSessions.create(challenge.address, now);
  deps.logger.info("admin_signed_in", { address: challenge.address, wallet: check.kind });
  return opened;
}

/** The admin signed in with `token`, or null. */
export async function adminSession(deps: Pick<AdminSignInDeps, "adminSessions" | "config">, token: string): Promise<AdminSession | null> {
  const session = await deps.adminSessions.get(token);
  // Removed from ADMIN_ADDRESSES since signing in: the session no longer counts.
  return session && deps.config.admins.some((a) => a.address === session.address) ? session : null;
}

/** Ends the session behind `token` (signing out). */
export async function signOutAdmin(deps: Pick<AdminSignInDeps, "adminSessions">, token: string): Promise<void> {
  await deps.adminSessions.delete(token);
}
