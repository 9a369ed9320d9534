import { createHash } from "node:crypto";
import * as v from "valibot";
import type { Config } from "../config.js";
import type { EligibilityService } from "../eligibility/service.js";
import { OPEN_RULES, RulesSchema, type Rules } from "../shared/rules.js";
import { ConflictError, InvalidRequestError } from "../shared/errors.js";
import { groupUrls, type JoinLinkStore } from "../stores/join-links.js";
import { webhookToken } from "../services/webhook-token.js";
import type { GroupRecord, GroupRegistry } from "../stores/registry.js";
import type { LinkService } from "../services/link-service.js";
import type { Logger } from "../shared/log.js";
import type { XmtpPort } from "../xmtp/port.js";

// XMTP limits group metadata in UTF-8 bytes (libxmtp: name 100, description 1000, image URL 2048), not characters.
/** A group's name: 1 to 100 bytes of UTF-8 after trimming. */
export const GroupNameSchema = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.minLength(1, "must not be empty"),
  v.maxBytes(100, "must be at most 100 bytes of UTF-8 (about 100 Latin letters, fewer accented letters or emoji)"),
);
/** A group's description: at most 1000 bytes of UTF-8 after trimming. */
export const GroupDescriptionSchema = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.maxBytes(1000, "must be at most 1000 bytes of UTF-8 (about 1000 Latin letters, fewer accented letters or emoji)"),
);

/** The body of `POST /api/create`. Unknown keys are rejected. */
export const CreateGroupSchema = v.strictObject({
  name: GroupNameSchema,
  description: v.optional(GroupDescriptionSchema, ""),
  imageUrl: v.optional(
    v.pipe(v.string("must be a string"), v.trim(), v.url("must be a URL"), v.startsWith("https://", "must be an https URL"), v.maxBytes(2048, "must be at most 2048 bytes")),
  ),
  rules: v.optional(RulesSchema, OPEN_RULES),
});

/** A validated create request. */
export type CreateGroupInput = v.InferOutput<typeof CreateGroupSchema>;

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

/** Accepted `Idempotency-Key` values (as Stripe's and the IETF draft's: an opaque token). */
export const IdempotencyKeySchema = v.pipe(
  v.string(),
  v.regex(/^[\x21-\x7e]{8,255}$/, "Idempotency-Key must be 8 to 255 visible ASCII characters"),
);

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

/**
 * Reads the optional `Idempotency-Key` header.
 * @throws {InvalidRequestError} when present but malformed.
 */
export function readIdempotencyKey(request: Request): string | undefined {
  const raw = request.headers.get("idempotency-key");
  if (raw === null) return undefined;
  const parsed = v.safeParse(IdempotencyKeySchema, raw.trim());
  if (!parsed.success) throw new InvalidRequestError(parsed.issues[0].message);
  return parsed.output;
}
