import { isValidWebhookToken } from "../services/webhook-token.js";
import type { Address } from "../shared/address.js";
import { UnauthorizedError } from "../shared/errors.js";
import { enforceLimit } from "../stores/rate-limits.js";
import { decideJoin, type JoinDecision, type JoinDeps } from "./decide-join.js";

/** What the link service posts to the webhook, validated: its link id, the group (topic) and the wallet. */
export interface WebhookJoinRequest {
  readonly groupLinkId: string;
  readonly topic: string;
  readonly walletAddress: Address;
}

/**
 * Checks the webhook token for the request's group, then decides the join (see {@link decideJoin}).
 * @throws {UnauthorizedError} when the token is missing or not the group's.
 * @throws {import("../shared/errors.js").RateLimitedError} over the per-wallet or per-group limit (429).
 */
export async function handleWebhookJoin(deps: JoinDeps, request: WebhookJoinRequest, token: string | null): Promise<JoinDecision> {
  if (!token || !isValidWebhookToken(deps.config.webhookSecret, request.topic.toLowerCase(), token)) {
    throw new UnauthorizedError("Missing or invalid webhook token");
  }
  // Per wallet within the group, not per IP: every webhook call comes from the link service's few addresses, and
  // a webhook URL leaked for one group must not lock a wallet out of the others.
  const groupId = request.topic.toLowerCase();
  await enforceLimit(deps.rateLimiter, "webhookPerWallet", `${groupId}:${request.walletAddress}`);
  return decideJoin(deps, { groupId, address: request.walletAddress, serviceLinkId: request.groupLinkId }, "webhook");
}
