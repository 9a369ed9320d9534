import { getAddress, type Hex } from "viem";
import { createSiweMessage } from "viem/siwe";
import type { Address } from "../shared/address.js";
import type { Config } from "../config.js";
import { chainName } from "../shared/chains.js";
import { describeRules } from "../eligibility/evaluate.js";
import type { Rules } from "../shared/rules.js";
import { NotFoundError, UnauthorizedError } from "../shared/errors.js";
import { JOIN_LINK_ID, joinPageUrl, type JoinLinkStore } from "../stores/join-links.js";
import type { GroupRecord } from "../stores/registry.js";
import { decideJoin, INACTIVE_LINK_REASON, type JoinDeps } from "./decide-join.js";
import { checkSignInMessage } from "./sign-in-message.js";
import { enforceLimit, ipSubject } from "../stores/rate-limits.js";
import { CHALLENGE_TTL_SECONDS, hashMessage, type ChallengeStore } from "../stores/challenges.js";
import type { SignatureCheck, SignatureVerifier } from "../services/signature-verifier.js";
import { contractWalletChains } from "../eligibility/contract-wallet-chains.js";

/** Where a joined person can open the group (xmtp.chat deep-links a conversation by its id). */
export const openInXmtpChat = (groupId: string): string => `https://xmtp.chat/conversations/${groupId}`;

/** What the join page and its two endpoints need. */
export interface JoinFlowDeps extends JoinDeps {
  readonly config: JoinDeps["config"] & Pick<Config, "publicUrl" | "eligibility">;
  readonly joinLinks: Pick<JoinLinkStore, "resolve">;
  readonly challenges: ChallengeStore;
  readonly signatures: SignatureVerifier;
  readonly now: () => Date;
}

/** What the join page shows. */
export type JoinPageView =
  | {
      readonly found: true;
      readonly linkId: string;
      readonly name: string;
      readonly description: string;
      readonly imageUrl?: string;
      /** What it takes to join, in plain words: all of them, one of them, or the only one. */
      /** What it takes, in plain words: all of the items, one of them, or at least `count` of them. */
      readonly requirements: { readonly mode: "all" | "any" | "atLeast"; readonly count?: number; readonly items: readonly string[] };
    }
  | { readonly found: false }
  /** Asked for too often from this network: try again after `retryAfterSeconds`. */
  | { readonly found: false; readonly busy: true; readonly retryAfterSeconds: number };

/** The active group behind a join link, or null when the link is unknown, replaced or turned off. */
async function groupOfLink(deps: Pick<JoinFlowDeps, "joinLinks" | "registry">, linkId: string): Promise<GroupRecord | null> {
  const link = await deps.joinLinks.resolve(linkId);
  if (!link?.enabled) return null;
  const group = await deps.registry.get(link.groupId);
  return group?.state === "active" ? group : null;
}

/**
 * The join page's content for a link, asked for from `ip` (page loads are limited per network: each costs Redis reads).
 * @throws {import("../shared/errors.js").StoreUnavailableError}
 */
export async function loadJoinPage(deps: Pick<JoinFlowDeps, "joinLinks" | "registry" | "rateLimiter">, linkId: string, ip: string): Promise<JoinPageView> {
  // A malformed id is no link at all: answered without asking Redis anything.
  if (!JOIN_LINK_ID.test(linkId)) return { found: false };
  const verdict = await deps.rateLimiter.hit("pagePerIp", ipSubject(ip));
  if (!verdict.allowed) return { found: false, busy: true, retryAfterSeconds: verdict.retryAfterSeconds };
  const group = await groupOfLink(deps, linkId);
  if (!group) return { found: false };
  return {
    found: true,
    linkId,
    name: group.name,
    description: group.description,
    ...(group.imageUrl ? { imageUrl: group.imageUrl } : {}),
    requirements: requirements(group.rules),
  };
}

function requirements(rules: Rules): { mode: "all" | "any" | "atLeast"; count?: number; items: string[] } {
  if ("all" in rules) return { mode: "all", items: rules.all.map(describeRules) };
  if ("any" in rules) return { mode: "any", items: rules.any.map(describeRules) };
  if ("of" in rules) return { mode: "atLeast", count: rules.atLeast, items: rules.of.map(describeRules) };
  return { mode: "all", items: [describeRules(rules)] };
}

/** A request for a sign-in message: which join link, which wallet, and the chain the wallet is on. */
export interface ChallengeRequest {
  readonly linkId: string;
  readonly address: Address;
  readonly chainId: number;
}

/** A signed sign-in message, as the join page posts it. */
export interface SignedJoin {
  readonly message: string;
  readonly signature: string;
}

/** A sign-in message for the wallet to sign. */
export interface IssuedMessage {
  readonly message: string;
  readonly expiresAt: string;
}

/**
 * Composes an EIP-4361 message for `address` to join the group behind `linkId`, with a single-use
 * nonce remembered for {@link CHALLENGE_TTL_SECONDS}.
 * @throws {import("../shared/errors.js").RateLimitedError} over the per-IP or per-address limit (429).
 * @throws {NotFoundError} the link is unknown, replaced or turned off (404).
 */
export async function issueChallenge(
  deps: JoinFlowDeps,
  input: ChallengeRequest,
  ip: string,
): Promise<IssuedMessage> {
  const network = ipSubject(ip);
  await enforceLimit(deps.rateLimiter, "challengePerIp", network);
  const group = await groupOfLink(deps, input.linkId);
  if (!group) throw new NotFoundError(INACTIVE_LINK_REASON);
  // Nothing proves the address yet: count it together with the network asking, so nobody can use up
  // someone else's wallet from their own.
  await enforceLimit(deps.rateLimiter, "challengePerAddressAndIp", `${input.address}|${network}`);

  const issuedAt = deps.now();
  const expiresAt = new Date(issuedAt.getTime() + CHALLENGE_TTL_SECONDS * 1000);
  const nonce = deps.challenges.newNonce();
  const message = createSiweMessage({
    domain: new URL(deps.config.publicUrl).host,
    address: getAddress(input.address),
    statement: statementFor(group.name),
    uri: joinPageUrl(deps.config.publicUrl, input.linkId),
    version: "1",
    chainId: input.chainId,
    nonce,
    issuedAt,
    expirationTime: expiresAt,
  });
  await deps.challenges.save(nonce, {
    linkId: input.linkId,
    groupId: group.groupId,
    address: input.address,
    chainId: input.chainId,
    messageHash: hashMessage(message),
    expiresAt: expiresAt.toISOString(),
  });
  return { message, expiresAt: expiresAt.toISOString() };
}

// EIP-4361: one line, no newline; the group's name says what the signature is for.
function statementFor(name: string): string {
  const clean = name.replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, " ").trim();
  return `Join the XMTP group chat "${clean}". Signing proves you own this wallet; it costs nothing and sends no transaction.`;
}

/** What the person reads when their signature is not accepted. */
function refusal(check: Exclude<SignatureCheck, { valid: true }>, address: string, chainId: number): string {
  const who = getAddress(address);
  switch (check.reason) {
    case "no-rpc":
      return `The signature is not from ${who}, or it is a smart-contract wallet on ${chainName(chainId)}, which this site cannot check`;
    case "chain-not-allowed":
      return check.allowed.length === 0
        ? `The signature is not from ${who}'s own key, and this group does not accept smart-contract wallets (its rules name no chain to check them on): join with a wallet that signs with its own key`
        : `The signature is not from ${who}'s own key, and this group checks smart-contract wallets on ${check.allowed.map(chainName).join(" or ")} only: switch your wallet to ${chainName(check.allowed[0]!)} and start again`;
    case "mismatch":
      return `The signature is not from ${who}`;
  }
}

/** What the join page shows after the signature: joined, or denied with the reason. */
export type JoinPageResult =
  | { readonly status: "SUCCESS"; readonly groupId: string; readonly openUrl: string }
  | { readonly status: "DENIED"; readonly reason: string };

/**
 * Checks a signed sign-in message (ours, unused, for this site, not expired, signed by its address:
 * EOA offline, smart-contract wallets via EIP-1271/6492 on the chain), uses its nonce, then
 * decides the join exactly as the webhook does.
 * @throws {UnauthorizedError} not an EIP-4361 message, not issued here, already used, expired, another site's, or not signed by its address (401).
 * @throws {import("../shared/errors.js").RateLimitedError} over a limit (429).
 * @throws {import("../services/signature-verifier.js").SignatureCheckUnavailableError} the chain could not be asked (503).
 * @throws {import("../xmtp/port.js").XmtpUnavailableError} XMTP unreachable (503).
 */
export async function joinWithSignature(
  deps: JoinFlowDeps,
  input: SignedJoin,
  ip: string,
): Promise<JoinPageResult> {
  const { publicUrl } = deps.config;
  await enforceLimit(deps.rateLimiter, "joinPerIp", ipSubject(ip));

  const nonce = checkSignInMessage(input.message, {
    publicUrl,
    now: deps.now(),
    forPage: (uri) => uri.startsWith(`${publicUrl}/join/`),
    notOurs: "This is not a sign-in message from this site; start again from the join page",
  });

  const issued = await deps.challenges.peek(nonce);
  if (issued.state === "used") throw new UnauthorizedError("This sign-in message was already used; start again");
  // Only the exact text we composed is accepted: no field can be changed after issue.
  if (issued.state === "unknown" || issued.challenge.messageHash !== hashMessage(input.message)) {
    throw new UnauthorizedError("This sign-in message was not issued here or has expired; start again");
  }
  const { challenge } = issued;

  const group = await deps.registry.get(challenge.groupId);
  if (group?.state !== "active") return { status: "DENIED", reason: INACTIVE_LINK_REASON };
  // A smart-contract wallet is checked only on a chain the group's rules read (see contractWalletChains).
  const contractChains = contractWalletChains(group.rules, deps.config.eligibility.rpcUrls);
  const check = await deps.signatures.verify({ address: challenge.address, message: input.message, signature: input.signature as Hex, chainId: challenge.chainId, contractChains });
  if (!check.valid) throw new UnauthorizedError(refusal(check, challenge.address, challenge.chainId));
  // Counted only now that the signature proved the address: forged requests cannot lock a wallet out.
  await enforceLimit(deps.rateLimiter, "joinPerProvenAddress", challenge.address);

  // The link may have been replaced or turned off since the message was issued.
  const link = await deps.joinLinks.resolve(challenge.linkId);
  if (!link?.enabled || link.groupId !== challenge.groupId) return { status: "DENIED", reason: INACTIVE_LINK_REASON };

  // The nonce is used only once the decision is down to XMTP: a person told "busy" (the group's budget) or
  // turned away by the rules was not admitted, and may send the same signature again.
  const consume = async () => {
    const used = await deps.challenges.consume(nonce);
    if (used === "used") throw new UnauthorizedError("This sign-in message was already used; start again");
    if (used === "unknown") throw new UnauthorizedError("This sign-in message has expired; start again");
  };
  const decision = await decideJoin(deps, { groupId: challenge.groupId, address: challenge.address }, "join-page", consume);
  deps.logger.info("join_page_signed", { groupId: challenge.groupId, wallet: check.kind, status: decision.status });
  return decision.status === "SUCCESS"
    ? { status: "SUCCESS", groupId: challenge.groupId, openUrl: openInXmtpChat(challenge.groupId) }
    : decision;
}
