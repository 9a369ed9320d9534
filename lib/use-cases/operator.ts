import type { Address } from "../shared/address.js";
import type { Config } from "../config.js";
import type { EligibilityService } from "../eligibility/service.js";
import type { Rules } from "../shared/rules.js";
import { NotFoundError } from "../shared/errors.js";
import { describeRules } from "../eligibility/evaluate.js";
import type { AuditKind } from "../stores/audit-log.js";
import type { GroupRecord, GroupRegistry } from "../stores/registry.js";
import { groupUrls, type JoinLink, type JoinLinkStore } from "../stores/join-links.js";
import type { Actor } from "./admin-sign-in.js";
import { addByOperator, personWallets, removeFromGroup, type AddResult, type MembershipDeps, type RemoveResult } from "../membership/membership.js";
import { EligibilitySourceError } from "../eligibility/evaluate.js";
import { XmtpUnavailableError } from "../xmtp/port.js";

/** What operator actions need. */
export interface OperatorDeps extends MembershipDeps {
  readonly config: Pick<Config, "linkService" | "publicUrl">;
  readonly registry: GroupRegistry;
  readonly joinLinks: JoinLinkStore;
  readonly eligibility: Pick<EligibilityService, "prepare" | "check">;
  readonly now: () => Date;
}

/** Members checked side by side in a preview: each check is an XMTP read and a JSON-RPC batch. */
const PREVIEW_CONCURRENCY = 8;

const present = (record: GroupRecord, joinLink: JoinLink, config: OperatorDeps["config"]) => {
  const { joinUrl, url } = groupUrls(config, record.linkId, joinLink.linkId);
  return {
    groupId: record.groupId,
    name: record.name,
    description: record.description,
    rules: record.rules,
    /** The rules in the plain words the join page shows. */
    requirement: describeRules(record.rules),
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

/**
 * Groups this backend manages, newest first, with member counts and the joins and denials of the last 24 hours
 * (from Redis; no XMTP call).
 */
export async function listGroups(deps: OperatorDeps, page: { offset: number; limit: number }) {
  const { groupIds, total } = await deps.registry.list(page);
  const since = new Date(deps.now().getTime() - 24 * 3600 * 1000);
  const groups = await Promise.all(
    groupIds.map(async (id) => {
      const record = await deps.registry.get(id);
      if (!record) return null;
      const [shown, memberCount, last24h] = await Promise.all([view(deps, record), deps.members.count(id), deps.audit.countSince(id, since)]);
      return { ...shown, memberCount, last24h };
    }),
  );
  return { groups: groups.filter((g) => g !== null), total, offset: page.offset, limit: page.limit };
}

/** What the operator may do to a group's join link: a new link (the old one stops working), or the same link off / on. */
export type JoinLinkAction = "rotate" | "disable" | "enable";

/** A change to a group: any of name, description (also on XMTP) and rules. */
export interface GroupPatch {
  readonly name?: string | undefined;
  readonly description?: string | undefined;
  readonly rules?: Rules | undefined;
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
      // Added by the operator: not re-verified against the rules.
      return { inboxId: m.inboxId, address, isAdmin: m.isAdmin, joinedAt: rec?.joinedAt ?? null, via: rec?.via ?? null, exempt: rec?.via === "operator" };
    }),
  };
}

/**
 * Adds wallets as the operator, rules bypassed (see {@link addByOperator}).
 * @throws {NotFoundError}
 * @throws {import("../xmtp/port.js").XmtpUnavailableError} (503: the add may be asked again; nobody is added twice)
 */
export async function addMembers(deps: OperatorDeps, groupId: string, addresses: readonly Address[], actor: Actor = "api-key"): Promise<{ results: AddResult[] }> {
  await ownGroup(deps, groupId);
  return { results: await addByOperator(deps, groupId, addresses, actor) };
}

/**
 * Removes wallets as the operator (see {@link removeFromGroup}).
 * @throws {NotFoundError}
 * @throws {import("../xmtp/port.js").XmtpUnavailableError}
 */
export async function removeMembers(deps: OperatorDeps, groupId: string, addresses: readonly Address[], actor: Actor = "api-key"): Promise<{ results: RemoveResult[] }> {
  await ownGroup(deps, groupId);
  return { results: await removeFromGroup(deps, groupId, addresses, { source: "operator", actor }) };
}

/** Sends a text as the backend wallet; audited with who sent it. @throws {NotFoundError} */
export async function sendMessage(deps: OperatorDeps, groupId: string, text: string, actor: Actor = "api-key"): Promise<{ messageId: string }> {
  await ownGroup(deps, groupId);
  const messageId = await deps.xmtp.withSession((s) => s.sendText(groupId, text));
  await deps.audit.append(groupId, { source: "operator", action: "message", outcome: "sent", actor });
  return { messageId };
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

/** Changes name, description (on XMTP too) or rules (re-validated); audited with who changed what. @throws {NotFoundError} */
export async function updateGroup(deps: OperatorDeps, groupId: string, patch: GroupPatch, actor: Actor = "api-key") {
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
  const changed = (["name", "description", "rules"] as const).filter((k) => patch[k] !== undefined);
  await deps.audit.append(groupId, { source: "operator", action: "edit", outcome: "changed", reason: changed.join(", "), actor });
  return view(deps, record);
}

/** Who would lose access under new rules (`PATCH …?dryRun=1`). */
export interface RulesPreview {
  readonly dryRun: true;
  /** The rules as they would be stored (labels read on chain). */
  readonly rules: Rules;
  /** Members who joined through the rules and would not pass the new ones, with the reason they would be given. */
  readonly wouldLoseAccess: { address: Address; reason: string }[];
  /** Members whose holdings or linked wallets could not be read right now: ask again. */
  readonly unchecked: Address[];
  /** Members checked, and members exempt (added by the operator, as re-verification leaves them). */
  readonly checked: number;
  readonly exempt: number;
}

/**
 * Checks every member who joined through the rules against `rules` as re-verification would (all their linked
 * wallets counted), and changes nothing: no record, no rule, no XMTP write.
 * @throws {NotFoundError}
 * @throws {import("../shared/errors.js").InvalidRequestError} the rules cannot be used (as PATCH would answer).
 * @throws {EligibilitySourceError} a chain the rules read could not be reached while preparing them (503).
 */
export async function previewRules(deps: OperatorDeps, groupId: string, rules: Rules): Promise<RulesPreview> {
  await ownGroup(deps, groupId);
  const prepared = await deps.eligibility.prepare(rules);
  const records = await deps.members.list(groupId);
  const subject = records.filter((m) => m.via !== "operator").map((m) => m.address);
  const wouldLoseAccess: RulesPreview["wouldLoseAccess"] = [];
  const unchecked: Address[] = [];
  for (let i = 0; i < subject.length; i += PREVIEW_CONCURRENCY) {
    await Promise.all(
      subject.slice(i, i + PREVIEW_CONCURRENCY).map(async (address) => {
        try {
          // No cache scope: a preview must not leave answers the group's joins would read.
          const answer = await deps.eligibility.check(prepared, await personWallets(deps, address));
          if (!answer.eligible) wouldLoseAccess.push({ address, reason: answer.reason });
        } catch (error) {
          if (error instanceof EligibilitySourceError || error instanceof XmtpUnavailableError) unchecked.push(address);
          else throw error;
        }
      }),
    );
  }
  return { dryRun: true, rules: prepared, wouldLoseAccess, unchecked, checked: subject.length, exempt: records.length - subject.length };
}

/**
 * Replaces the group's join link (the old one shows "not found" at once), or turns it off or on.
 * The link service's link, if any, is not touched. Audited with who did it. @throws {NotFoundError}
 */
export async function changeJoinLink(deps: OperatorDeps, groupId: string, action: JoinLinkAction, actor: Actor = "api-key") {
  const record = await ownGroup(deps, groupId);
  const link =
    action === "rotate" ? await deps.joinLinks.rotate(groupId) : await deps.joinLinks.setEnabled(groupId, action === "enable");
  await deps.audit.append(groupId, { source: "operator", action: "join-link", outcome: "changed", reason: action, actor });
  return present(record, link, deps.config);
}
