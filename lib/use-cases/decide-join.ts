import type { Address } from "../shared/address.js";
import type { Config } from "../config.js";
import type { EligibilityChecker } from "../eligibility/evaluate.js";
import { enforceLimit, type RateLimiter } from "../stores/rate-limits.js";
import { RateLimitedError, UnauthorizedError } from "../shared/errors.js";
import type { GroupRegistry } from "../stores/registry.js";
import { admit, personWallets, recordJoinEnded, type JoinDoor, type MembershipDeps } from "../membership/membership.js";
import { leaves } from "../shared/rules.js";
import { ADMIT_DENIAL_REASONS } from "../membership/admit-batch.js";

/** The answer the link service shows the person. */
export type JoinDecision = { readonly status: "SUCCESS" } | { readonly status: "DENIED"; readonly reason: string };

/** Reason shown when the link does not lead to a group this backend runs. */
export const INACTIVE_LINK_REASON = "This group link is not active";

/** What deciding a join needs. */
export interface JoinDeps extends MembershipDeps {
  readonly config: { readonly webhookSecret: string; readonly rateLimits: Config["rateLimits"] };
  readonly rateLimiter: RateLimiter;
  readonly registry: GroupRegistry;
  readonly eligibility: EligibilityChecker;
}

/**
 * Decides whether a wallet joins a group and, if so, adds it: group active (and, through a link
 * service, its current link)? eligible, with every wallet linked to its XMTP inbox counted? within the group's admission budget? on XMTP? already a member?
 * room left? The rules are checked here, side by side with every other request; the XMTP part is an admission
 * served with others in shared commits (see {@link admit}). Every decision, and every failure, is written to the
 * group's audit log. Callers check their own credentials first; `beforeAdmit` runs once everything but XMTP has
 * passed (the join page uses its nonce there).
 * @throws {import("../shared/errors.js").RateLimitedError} over the group's admission budget (429; only eligible wallets count).
 * @throws {import("../xmtp/port.js").XmtpUnavailableError} XMTP could not be reached; the person may retry (503).
 * @throws {import("../shared/errors.js").StoreUnavailableError} Redis could not be reached (503).
 */
export async function decideJoin(
  deps: JoinDeps,
  request: { groupId: string; address: Address; serviceLinkId?: string },
  source: JoinDoor,
  beforeAdmit?: () => Promise<void>,
): Promise<JoinDecision> {
  const { groupId, address } = request;
  const group = await deps.registry.get(groupId);
  const staleServiceLink = request.serviceLinkId !== undefined && group?.linkId !== request.serviceLinkId;
  if (!group || group.state !== "active" || staleServiceLink) {
    // Nothing to audit against: the group is not ours or the link is stale.
    return { status: "DENIED", reason: INACTIVE_LINK_REASON };
  }
  const join = { groupId, address, source };
  try {
    // Every wallet linked to the person's inbox counts (rules that read nothing need none of them).
    const wallets = leaves(group.rules).every((leaf) => leaf.type === "open") ? [address] : await personWallets(deps, address);
    const eligibility = await deps.eligibility.check(group.rules, wallets, groupId);
    if (!eligibility.eligible) {
      await recordJoinEnded(deps, join, "denied", eligibility.reason);
      return { status: "DENIED", reason: eligibility.reason };
    }
    // Charged here, not on arrival: wallets the rules turn away cannot use up the group's budget.
    await enforceLimit(deps.rateLimiter, "admissionsPerGroup", groupId);
    await beforeAdmit?.();
    // The member record and the audit entry of a served admission are written by whoever served it.
    const outcome = await admit(deps, join);
    deps.logger.info("join_decided", { groupId, outcome });
    if (outcome === "added" || outcome === "already-member") return { status: "SUCCESS" };
    if (outcome === "group-gone") return { status: "DENIED", reason: INACTIVE_LINK_REASON };
    return { status: "DENIED", reason: ADMIT_DENIAL_REASONS[outcome] };
  } catch (error) {
    if (error instanceof RateLimitedError || error instanceof UnauthorizedError) throw error;
    await recordJoinEnded(deps, join, "error", error instanceof Error ? error.name : "unknown").catch(() => undefined);
    throw error;
  }
}
