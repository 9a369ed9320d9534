import * as v from "valibot";
import { AddressSchema } from "../shared/address.js";
import { GroupDescriptionSchema, GroupNameSchema } from "./create-group.js";
import type { Config } from "../config.js";
import type { EligibilityService } from "../eligibility/service.js";
import { RulesSchema, type Rules } from "../shared/rules.js";
import { NotFoundError } from "../shared/errors.js";
import type { AuditEntry, AuditKind, AuditLog } from "../stores/audit-log.js";
import type { MemberStore } from "../stores/members.js";
import type { GroupRecord, GroupRegistry } from "../stores/registry.js";
import { groupUrls, type JoinLink, type JoinLinkStore } from "../stores/join-links.js";
import { inboxOf } from "../membership/membership.js";
import type { AdmissionQueue } from "../stores/admission-queue.js";
import type { InboxCache } from "../stores/inbox-cache.js";
import { ADMIT_DENIAL_REASONS, admitBatch, type AdmitOutcome } from "../membership/admit-batch.js";
import { XmtpUnavailableError, type Address, type XmtpPort } from "../xmtp/port.js";

/** Most addresses one add/remove call takes (one MLS commit). */
export const MAX_MEMBER_BATCH = 50;

/** Pagination query: `?offset&limit`. */
export const PageSchema = v.object({
  offset: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, "offset must be a whole number"), v.transform(Number)), "0"),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, "limit must be a whole number"), v.transform(Number), v.minValue(1, "limit must be at least 1"), v.maxValue(100, "limit must be at most 100")), "20"),
});

/** `?offset&limit&type` for the audit log: `changes`, `denials` or `all` (the default). */
export const AuditQuerySchema = v.object({
  ...PageSchema.entries,
  type: v.optional(v.picklist(["changes", "denials", "all"], "type must be changes, denials or all"), "all"),
});

/** `{addresses:[…]}` for adding or removing members. */
export const AddressesSchema = v.strictObject({
  addresses: v.pipe(
    v.array(AddressSchema, "must be an array of addresses"),
    v.minLength(1, "must list at least one address"),
    v.maxLength(MAX_MEMBER_BATCH, `must list at most ${MAX_MEMBER_BATCH} addresses`),
    v.transform((list) => [...new Set(list)]),
  ),
});

/** `{text}` for sending a message. */
export const MessageSchema = v.strictObject({
  text: v.pipe(v.string("must be a string"), v.minLength(1, "must not be empty"), v.maxLength(4000, "must be at most 4000 characters")),
});

/** `?limit&before` for listing messages. */
export const MessagesQuerySchema = v.object({
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, "limit must be a whole number"), v.transform(Number), v.minValue(1), v.maxValue(100, "limit must be at most 100")), "20"),
  before: v.optional(v.pipe(v.string(), v.isoTimestamp("before must be an ISO 8601 timestamp"), v.transform((s) => new Date(s)))),
});

/** `PATCH /api/groups/:id` body. */
export const GroupPatchSchema = v.pipe(
  v.strictObject({
    name: v.optional(GroupNameSchema),
    description: v.optional(GroupDescriptionSchema),
    rules: v.optional(RulesSchema),
  }),
  v.check((p) => p.name !== undefined || p.description !== undefined || p.rules !== undefined, "must change name, description or rules"),
);

/** `POST /api/groups/:id/join-link` body: a new link (the old one stops working), or the same link off / on. */
export const JoinLinkActionSchema = v.strictObject({
  action: v.picklist(["rotate", "disable", "enable"], "must be rotate, disable or enable"),
});

/** What operator actions need. */
export interface OperatorDeps {
  readonly config: Pick<Config, "linkService" | "publicUrl">;
  readonly registry: GroupRegistry;
  readonly joinLinks: JoinLinkStore;
  readonly members: MemberStore;
  readonly audit: AuditLog;
  readonly xmtp: XmtpPort;
  readonly inboxes: InboxCache;
  readonly admissions: Pick<AdmissionQueue, "forget">;
  readonly eligibility: Pick<EligibilityService, "prepare">;
}

const present = (record: GroupRecord, joinLink: JoinLink, config: OperatorDeps["config"]) => {
  const { joinUrl, url } = groupUrls(config, record.linkId, joinLink.linkId);
  return {
    groupId: record.groupId,
    name: record.name,
    description: record.description,
    rules: record.rules,
    state: record.state,
    joinLinkId: joinLink.linkId,
    joinUrl,
    joinLinkEnabled: joinLink.enabled,
    groupLinkId: record.linkId,
    url,
    createdAt: record.createdAt,
  };
};

/** The group as the operator sees it; groups from before join links get theirs here (no migration step). */
const view = async (deps: OperatorDeps, record: GroupRecord) => present(record, await deps.joinLinks.ensure(record.groupId), deps.config);

/** The group if this backend created it. @throws {NotFoundError} */
async function ownGroup(deps: OperatorDeps, groupId: string): Promise<GroupRecord> {
  const record = await deps.registry.get(groupId);
  if (!record) throw new NotFoundError(`No group ${groupId} managed here`);
  return record;
}

/** Groups this backend manages, newest first, with member counts (from Redis; no XMTP call). */
export async function listGroups(deps: OperatorDeps, page: { offset: number; limit: number }) {
  const { groupIds, total } = await deps.registry.list(page);
  const groups = await Promise.all(
    groupIds.map(async (id) => {
      const record = await deps.registry.get(id);
      return record ? { ...(await view(deps, record)), memberCount: await deps.members.count(id) } : null;
    }),
  );
  return { groups: groups.filter((g) => g !== null), total, offset: page.offset, limit: page.limit };
}

/** One group with its current members (from XMTP) and when each joined (from the record). @throws {NotFoundError} */
export async function showGroup(deps: OperatorDeps, groupId: string) {
  const record = await ownGroup(deps, groupId);
  const [live, recorded] = await Promise.all([deps.xmtp.withSession((s) => s.listMembers(groupId)), deps.members.list(groupId)]);
  const joined = new Map(recorded.map((m) => [m.address, m]));
  return {
    ...(await view(deps, record)),
    members: live.map((m) => {
      const address = m.addresses[0] ?? null;
      const rec = address ? joined.get(address) : undefined;
      return { inboxId: m.inboxId, address, isAdmin: m.isAdmin, joinedAt: rec?.joinedAt ?? null, via: rec?.via ?? null };
    }),
  };
}

/** Per-address outcome of an operator add. */
export type AddResult = { address: Address; result: AdmitOutcome };

/**
 * Adds wallets as the operator (rules bypassed) in one commit; everyone named becomes exempt from
 * re-verification. Inboxes are looked up side by side first; audited.
 * @throws {NotFoundError}
 * @throws {XmtpUnavailableError} (503: the add may be asked again; nobody is added twice)
 */
export async function addMembers(deps: OperatorDeps, groupId: string, addresses: readonly Address[]): Promise<{ results: AddResult[] }> {
  await ownGroup(deps, groupId);
  const candidates = await Promise.all(addresses.map(async (address) => ({ address, inboxId: await inboxOf(deps, address) })));
  const outcomes = await deps.xmtp.withSession((session) => admitBatch(session, groupId, candidates));
  if (outcomes.size < addresses.length) throw new XmtpUnavailableError("The session's time ran out before every address was decided");
  const results = addresses.map((address) => ({ address, result: outcomes.get(address)! }));
  // The operator vouches for them: exempt from re-verification even if they first joined through the rules.
  await deps.members.recordMany(
    groupId,
    results.filter((r) => r.result === "added" || r.result === "already-member").map((r) => ({ address: r.address, via: "operator" as const, mode: "exempt" as const })),
  );
  for (const { address, result } of results) if (result === "refused") await deps.inboxes.forget(address);
  await deps.audit.appendMany(
    groupId,
    results.map(({ address, result }) => {
      const entry = { source: "operator" as const, action: "add" as const, address };
      if (result === "added" || result === "already-member") return { ...entry, outcome: result };
      return { ...entry, outcome: result === "not-on-xmtp" ? ("not-on-xmtp" as const) : ("denied" as const), reason: ADMIT_DENIAL_REASONS[result] };
    }),
  );
  return { results };
}

/** Per-address outcome of an operator remove. */
export type RemoveResult = { address: Address; result: "removed" | "not-a-member" | "not-on-xmtp" };

/**
 * Removes wallets in one commit; the backend's own inbox is never removed. Audited with `reason`.
 * @throws {NotFoundError}
 */
export async function removeMembers(
  deps: OperatorDeps,
  groupId: string,
  addresses: readonly Address[],
  source: AuditEntry["source"] = "operator",
  reason?: string,
): Promise<{ results: RemoveResult[] }> {
  await ownGroup(deps, groupId);
  const inboxes = await Promise.all(addresses.map((address) => inboxOf(deps, address)));
  const results = await deps.xmtp.withSession(async (session) => {
    const members = await session.listMembers(groupId);
    const out: RemoveResult[] = [];
    const toRemove: string[] = [];
    addresses.forEach((address, i) => {
      const inboxId = inboxes[i] ?? null;
      if (inboxId === null) out.push({ address, result: "not-on-xmtp" });
      else if (inboxId === session.inboxId || !members.some((m) => m.inboxId === inboxId)) out.push({ address, result: "not-a-member" });
      else {
        toRemove.push(inboxId);
        out.push({ address, result: "removed" });
      }
    });
    if (toRemove.length > 0) await session.removeMembers(groupId, toRemove);
    return out;
  });
  // Out of the group now (removed, or found already out): a join that ended "added" a moment ago is no longer the
  // answer for a retry.
  await deps.admissions.forget(groupId, results.filter((r) => r.result !== "not-on-xmtp").map((r) => r.address));
  await deps.members.remove(groupId, results.filter((r) => r.result !== "not-on-xmtp").map((r) => r.address));
  for (const { address, result } of results) {
    await deps.audit.append(groupId, { source, action: "remove", address, outcome: result, ...(reason ? { reason } : {}) });
  }
  return { results };
}

/** Sends a text as the backend wallet. @throws {NotFoundError} */
export async function sendMessage(deps: OperatorDeps, groupId: string, text: string): Promise<{ messageId: string }> {
  await ownGroup(deps, groupId);
  return { messageId: await deps.xmtp.withSession((s) => s.sendText(groupId, text)) };
}

/** Recent messages, newest first, with the sender's address where known. @throws {NotFoundError} */
export async function listMessages(deps: OperatorDeps, groupId: string, query: { limit: number; before?: Date | undefined }) {
  await ownGroup(deps, groupId);
  const { messages, members } = await deps.xmtp.withSession(async (s) => ({
    messages: await s.listMessages(groupId, { limit: query.limit, ...(query.before ? { before: query.before } : {}) }),
    members: await s.listMembers(groupId),
  }));
  const addressOf = new Map(members.map((m) => [m.inboxId, m.addresses[0] ?? null]));
  return {
    messages: messages.map((m) => ({ id: m.id, sender: addressOf.get(m.senderInboxId) ?? null, senderInboxId: m.senderInboxId, sentAt: m.sentAt.toISOString(), text: m.text, kind: m.kind })),
  };
}

/** The group's join/leave decisions, newest first: changes, denials, or both. @throws {NotFoundError} */
export async function groupAudit(deps: OperatorDeps, groupId: string, query: { offset: number; limit: number; type: AuditKind }) {
  await ownGroup(deps, groupId);
  return { ...(await deps.audit.list(groupId, { offset: query.offset, limit: query.limit, kind: query.type })), offset: query.offset, limit: query.limit, type: query.type };
}

/** Changes name, description (on XMTP too) or rules (re-validated). @throws {NotFoundError} */
export async function updateGroup(deps: OperatorDeps, groupId: string, patch: { name?: string | undefined; description?: string | undefined; rules?: Rules | undefined }) {
  await ownGroup(deps, groupId);
  const rules = patch.rules ? await deps.eligibility.prepare(patch.rules) : undefined;
  if (patch.name !== undefined || patch.description !== undefined) {
    await deps.xmtp.withSession((s) =>
      s.updateGroup(groupId, { ...(patch.name !== undefined ? { name: patch.name } : {}), ...(patch.description !== undefined ? { description: patch.description } : {}) }),
    );
  }
  const record = await deps.registry.update(groupId, {
    ...(patch.name !== undefined ? { name: patch.name } : {}),
    ...(patch.description !== undefined ? { description: patch.description } : {}),
    ...(rules ? { rules } : {}),
  });
  return view(deps, record);
}

/**
 * Replaces the group's join link (the old one shows "not found" at once), or turns it off or on.
 * The link service's link, if any, is not touched. @throws {NotFoundError}
 */
export async function changeJoinLink(deps: OperatorDeps, groupId: string, action: v.InferOutput<typeof JoinLinkActionSchema>["action"]) {
  const record = await ownGroup(deps, groupId);
  const link =
    action === "rotate" ? await deps.joinLinks.rotate(groupId) : await deps.joinLinks.setEnabled(groupId, action === "enable");
  return present(record, link, deps.config);
}
