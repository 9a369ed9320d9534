import { createHash } from "node:crypto";
import type { Config } from "../config.js";
import type { EligibilityService } from "../eligibility/service.js";
import type { Rules } from "../shared/rules.js";
import { ConflictError } from "../shared/errors.js";
import { groupUrls, type JoinLinkStore } from "../stores/join-links.js";
import { webhookToken } from "../services/webhook-token.js";
import type { GroupRecord, GroupRegistry } from "../stores/registry.js";
import type { LinkService } from "../services/link-service.js";
import type { Logger } from "../shared/log.js";
import type { XmtpPort } from "../xmtp/port.js";

/** A valid create request (see the HTTP schema for the limits). */
export interface CreateGroupInput {
  readonly name: string;
  readonly description: string;
  readonly imageUrl?: string | undefined;
  readonly rules: Rules;
}

/** What the operator gets back: the group and its shareable links. */
export interface CreatedGroup {
  readonly groupId: string;
  /** The group's own join link id, and its page on this deployment. */
  readonly joinLinkId: string;
  readonly joinUrl: string;
  /** The link to share: the link service's when one is configured, else {@link joinUrl}. */
  readonly url: string;
  /** The link service's id for the group (only when a link service is configured). */
  readonly groupLinkId?: string;
  readonly rules: Rules;
}

/** What creating a group needs. */
export interface CreateGroupDeps {
  readonly config: Pick<Config, "publicUrl" | "webhookSecret" | "linkService">;
  readonly xmtp: XmtpPort;
  readonly registry: GroupRegistry;
  readonly joinLinks: Pick<JoinLinkStore, "ensure">;
  /** Null when no link service is configured: the group has its own join link only. */
  readonly linkService: LinkService | null;
  readonly eligibility: Pick<EligibilityService, "prepare">;
  readonly logger: Logger;
}

/**
 * Creates an XMTP group, records it (`pending-link`), publishes it to the network, gives it a join link of its
 * own, registers it with the link service when one is configured, and activates it.
 * With an idempotency key, a retry answers the same group and finishes what failed before (publishing it,
 * registering its link) instead of creating a second group.
 * @throws {ConflictError} the key is in use by a running request, or was used with another body (409).
 * @throws {import("../xmtp/port.js").XmtpUnavailableError} XMTP unreachable (503; the link service is not called).
 * @throws {import("../services/link-service.js").LinkServiceError} link registration failed (502; the group stays `pending-link`).
 */
export async function createGroup(deps: CreateGroupDeps, input: CreateGroupInput, idempotencyKey?: string): Promise<CreatedGroup> {
  const { registry } = deps;
  const fingerprint = createHash("sha256").update(JSON.stringify(input)).digest("hex");
  if (idempotencyKey !== undefined) {
    const claim = await registry.claimIdempotencyKey(idempotencyKey, fingerprint);
    if (claim.kind === "mismatch") {
      throw new ConflictError("This Idempotency-Key was already used with a different request body");
    }
    if (claim.kind === "in-progress") throw new ConflictError("A request with this Idempotency-Key is still running", 2);
    if (claim.kind === "created") {
      const existing = await registry.get(claim.groupId);
      if (existing) return finish(deps, existing);
      // The key names a group whose record is gone: start over rather than answer nothing.
    }
  }

  let record: GroupRecord;
  try {
    // Rules are checked (and enriched from the chain) before anything is created.
    const rules = await deps.eligibility.prepare(input.rules);
    record = await deps.xmtp.withSession(async (session) => {
      // Created on this installation first and recorded before the network hears of it: if publishing fails,
      // a retry with the same Idempotency-Key publishes this group instead of creating a second one.
      const group = await session.createGroup({ name: input.name, description: input.description, ...(input.imageUrl ? { imageUrl: input.imageUrl } : {}) });
      const pending = await registry.insertPending(
        { groupId: group.groupId, name: input.name, description: input.description, ...(input.imageUrl ? { imageUrl: input.imageUrl } : {}), rules },
        idempotencyKey === undefined ? undefined : { key: idempotencyKey, fingerprint },
      );
      await session.publishGroup(group.groupId);
      return pending;
    });
  } catch (error) {
    if (idempotencyKey !== undefined) {
      // Frees the key only if no group was recorded under it (see releaseIdempotencyKey).
      await registry.releaseIdempotencyKey(idempotencyKey, fingerprint).catch(() => undefined);
    }
    throw error;
  }
  deps.logger.info("group_created", { groupId: record.groupId });
  return finish(deps, record, true);
}

async function finish(deps: CreateGroupDeps, record: GroupRecord, published = false): Promise<CreatedGroup> {
  // Made before registering, so the operator's retry after a failed registration gets the same link back.
  const joinLink = await deps.joinLinks.ensure(record.groupId);
  let current = record;
  if (record.state === "pending-link") {
    // A retry: the first attempt may have stopped before the network had the group.
    if (!published) await deps.xmtp.withSession((session) => session.publishGroup(record.groupId));
    let linkId: string | null = null;
    if (deps.linkService) {
      const token = webhookToken(deps.config.webhookSecret, record.groupId);
      linkId = await deps.linkService.register({
        webhook: `${deps.config.publicUrl}/api/webhook?token=${token}`,
        topic: record.groupId,
        name: record.name,
        description: record.description,
      });
      deps.logger.info("group_link_registered", { groupId: record.groupId, linkId });
    }
    current = await deps.registry.activate(record.groupId, linkId);
  }
  const { joinUrl, serviceUrl, url } = groupUrls(deps.config, current.linkId, joinLink.linkId);
  return {
    groupId: current.groupId,
    joinLinkId: joinLink.linkId,
    joinUrl,
    url,
    ...(serviceUrl && current.linkId ? { groupLinkId: current.linkId } : {}),
    rules: current.rules,
  };
}
