import type { AdmissionOutcome, AdmissionQueue, PendingAdmission } from "../stores/admission-queue.js";
import type { AuditEntry, AuditLog } from "../stores/audit-log.js";
import type { InboxCache } from "../stores/inbox-cache.js";
import type { MemberStore, RecordMode } from "../stores/members.js";
import type { Logger } from "../shared/log.js";
import { describeError } from "../shared/log.js";
import { ADMIT_DENIAL_REASONS, admitBatch, type AdmitOutcome } from "./admit-batch.js";
import {
  SESSION_BUDGET_MS,
  SessionNotNeededError,
  XmtpBusyError,
  XmtpGroupNotFoundError,
  XmtpNetworkChangedError,
  XmtpOperationError,
  XmtpUnavailableError,
  type XmtpPort,
  type XmtpSession,
} from "../xmtp/port.js";
import type { Address } from "../shared/address.js";
import { MAX_WALLETS } from "../shared/rules.js";
import type { WriteFence } from "../shared/redis.js";

/** The doors a person joins through (the operator adds; the cron removes). */
export type JoinDoor = PendingAdmission["source"];

/** Groups whose admissions one session serves at the same time. */
const GROUPS_AT_ONCE = 32;

/** Admissions of one group served in one session, at most (the queue may hold more). */
const BATCH_PER_GROUP = 250;

/** Most addresses one operator add or remove takes (one MLS commit). */
export const MAX_MEMBER_BATCH = 50;

/**
 * What the membership service needs. It is the one place that changes who is in a group: it admits (webhook,
 * join page), adds for the operator, removes (operator, cron), and writes the member record, the audit entry and
 * the reason shown to the person for each of them.
 */
export interface MembershipDeps {
  readonly xmtp: XmtpPort;
  readonly admissions: AdmissionQueue;
  readonly inboxes: InboxCache;
  readonly members: MemberStore;
  readonly audit: AuditLog;
  readonly logger: Logger;
}

/**
 * The inbox an address belongs to: from the cache, else looked up (no session needed) and remembered.
 * @throws {XmtpUnavailableError}
 */
export async function inboxOf(deps: Pick<MembershipDeps, "xmtp" | "inboxes">, address: Address): Promise<string | null> {
  const cached = await deps.inboxes.get(address);
  if (cached !== undefined) return cached;
  const found = await deps.xmtp.lookupInboxId(address);
  await deps.inboxes.set(address, found);
  return found;
}

/**
 * The wallets a person counts with under the rules: the joining address first, then the other Ethereum addresses
 * linked to its XMTP inbox, read afresh from the network every time (wallets are linked and unlinked), at most
 * {@link MAX_WALLETS}. An address without an inbox counts alone.
 * @throws {XmtpUnavailableError} the inbox or its addresses could not be read: never a decision on fewer wallets.
 */
export async function personWallets(deps: Pick<MembershipDeps, "xmtp" | "inboxes">, address: Address): Promise<Address[]> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const inboxId = await inboxOf(deps, address);
    if (inboxId === null) return [address];
    const linked = await deps.xmtp.inboxAddresses(inboxId);
    if (linked.includes(address)) return [address, ...linked.filter((a) => a !== address)].slice(0, MAX_WALLETS);
    // The remembered inbox no longer holds this address (it was unlinked since): ask the network afresh, once.
    await deps.inboxes.forget(address);
  }
  return [address];
}

/**
 * Admits one wallet that passed its group's rules. Its admission is queued in Redis with everyone else's, and
 * whichever instance holds the XMTP lease adds every waiting inbox of a group in one commit; this request either
 * becomes that holder or waits for its outcome. A request that gives up (its own deadline) leaves the admission
 * queued: it is served anyway, and the person's retry reads that outcome (the records are written once, by the
 * holder that served it).
 * @throws {XmtpUnavailableError} XMTP failed or refused while serving it, or it was still waiting after `waitMs` (503: ask again).
 * @throws {XmtpBusyError} the lease stayed busy past `waitMs` (503: ask again).
 * @throws {import("../shared/errors.js").StoreUnavailableError}
 */
export async function admit(
  deps: MembershipDeps,
  request: { groupId: string; address: Address; source: JoinDoor },
  options: { waitMs?: number } = {},
): Promise<Exclude<AdmissionOutcome, "unavailable">> {
  const { groupId, address } = request;
  const inboxId = await inboxOf(deps, address);
  if (inboxId === null) {
    // Decided before any queue: nobody else records it.
    await deps.audit.append(groupId, auditEntry({ source: request.source, action: "join", address }, "not-on-xmtp"));
    return "not-on-xmtp";
  }
  const started = Date.now();
  const queued = await deps.admissions.enqueue(groupId, { address, inboxId, source: request.source });
  if (queued.state === "done") return settled(queued.outcome);
  const deadline = started + (options.waitMs ?? 25_000);
  // A session started late in the wait still ends within the request's time.
  const sessionDeadline = started + SESSION_BUDGET_MS;
  for (;;) {
    const outcome = await deps.admissions.outcome(groupId, address);
    if (outcome) return settled(outcome);
    // Given up: the admission stays queued, and is served with the next ones.
    if (Date.now() >= deadline) throw new XmtpUnavailableError("Admission still waiting when the request's time ran out");
    try {
      await deps.xmtp.withSession((session) => serveAdmissions(deps, session), { watch: deps.admissions.watch(groupId, address), deadline: sessionDeadline });
    } catch (error) {
      if (error instanceof SessionNotNeededError || error instanceof XmtpBusyError) continue;
      // XMTP refused to start the session (the client would not open): the admission waits, the person asks again.
      if (error instanceof XmtpOperationError) throw new XmtpUnavailableError("XMTP refused while admissions were served", { cause: error });
      throw error;
    }
  }
}

function settled(outcome: AdmissionOutcome): Exclude<AdmissionOutcome, "unavailable"> {
  if (outcome === "unavailable") throw new XmtpUnavailableError("XMTP failed while the admission was served");
  return outcome;
}

/**
 * Serves every waiting admission, group by group, as the lease holder: one batch (one commit, normally) per group,
 * until the queues are empty or the session's deadline. Each admission ends with its outcome; the member record
 * and the audit entry are written here, once, before the outcome, as each commit lands (a crash in between serves
 * it again: it is then "already a member"). What is left of a batch when XMTP fails ends "unavailable" (their
 * requests answer 503). A failing network stops serving; a group XMTP will not serve (gone, or its read refused)
 * is passed over for the next. Records, audit entries and outcomes carry the session's fence: once another holder
 * has taken over, they are refused (nothing written), so a holder that lost its lease never overwrites the new one's.
 * @throws {XmtpUnavailableError | import("../shared/errors.js").StoreUnavailableError}
 * @throws {import("../shared/errors.js").FencedWriteError} this session's lease was taken over.
 */
export async function serveAdmissions(deps: MembershipDeps, session: XmtpSession): Promise<void> {
  // Several groups at once, each taken up as soon as a lane is free, oldest first: each group is its own MLS
  // state, so their commits need not wait for each other (their checkpoints are shared: the durable database's
  // group commit), and a group whose people arrived while others were being served does not wait for the slowest.
  const busy = new Set<string>();
  // Groups this session found nothing to serve in (their waiting entries were stale): not visited again.
  const drained = new Set<string>();
  const serveGroup = async (groupId: string): Promise<number> => {
    const batch = await deps.admissions.take(groupId, BATCH_PER_GROUP);
    if (batch.length === 0) return 0;
    const ended = new Set<Address>();
    try {
      await admitBatch(session, groupId, batch, async (decided) => {
        const now = batch.filter((a) => decided.has(a.address) && !ended.has(a.address));
        if (now.length === 0) return;
        await record(deps, groupId, now, decided, session.fence);
        await deps.admissions.complete(groupId, now.map((a) => ({ address: a.address, outcome: decided.get(a.address)! })), session.fence);
        for (const a of now) ended.add(a.address);
      });
    } catch (error) {
      // Left queued: the port runs this work again on the new network, and that run decides them.
      if (error instanceof XmtpNetworkChangedError) throw error;
      const gone = error instanceof XmtpGroupNotFoundError;
      if (gone) deps.logger.error("group_missing_on_xmtp", { groupId });
      else deps.logger.warn("admissions_unavailable", { groupId, admissions: batch.length - ended.size, error: describeError(error) });
      const outcome: AdmissionOutcome = gone ? "group-gone" : "unavailable";
      await deps.admissions.complete(groupId, batch.filter((a) => !ended.has(a.address)).map((a) => ({ address: a.address, outcome })), session.fence);
      // Only this group failed: the others are still served.
      if (gone || error instanceof XmtpOperationError) return batch.length;
      throw error;
    }
    return batch.length;
  };
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (!failure && Date.now() < session.deadline) {
      const groupId = (await deps.admissions.groupsOldestFirst()).find((g) => !busy.has(g) && !drained.has(g));
      if (groupId === undefined) return;
      busy.add(groupId);
      try {
        if ((await serveGroup(groupId)) === 0) drained.add(groupId);
      } catch (error) {
        failure ??= { error };
      } finally {
        busy.delete(groupId);
      }
    }
  };
  await Promise.all(Array.from({ length: GROUPS_AT_ONCE }, lane));
  if (failure) throw failure.error;
}

async function record(deps: MembershipDeps, groupId: string, decided: readonly PendingAdmission[], outcomes: ReadonlyMap<Address, AdmitOutcome>, fence: WriteFence | undefined): Promise<void> {
  const results = decided.map((a) => ({ address: a.address, result: outcomes.get(a.address)!, via: a.source }));
  // Added now through the rules: that is how they joined (an earlier operator exemption no longer applies).
  // Already a member: whatever was recorded stays (an operator's add keeps them exempt).
  await recordAdmitted(deps, groupId, results, "join", (result) => (result === "added" ? "replace" : "keep"), fence);
}

/**
 * Writes what admitting came to: a member record for each one in (written as `mode` says), a cached inbox XMTP
 * refused forgotten (it may be out of date: looked up afresh next time), and one audit entry each, with the
 * person-facing reason for those kept out. The door they came through is both the record's `via` and the
 * entry's source. Under a session's `fence`, records and entries are written only while it is the newest.
 * @throws {import("../shared/errors.js").FencedWriteError} a newer lease holder exists.
 */
async function recordAdmitted(
  deps: MembershipDeps,
  groupId: string,
  results: readonly { address: Address; result: AdmitOutcome; via: JoinDoor | "operator" }[],
  action: "join" | "add",
  mode: (result: AdmitOutcome) => RecordMode,
  fence?: WriteFence,
  actor?: string,
): Promise<void> {
  await deps.members.recordMany(
    groupId,
    results.filter((r) => isIn(r.result)).map((r) => ({ address: r.address, via: r.via, mode: mode(r.result) })),
    fence,
  );
  for (const { address, result } of results) if (result === "refused") await deps.inboxes.forget(address);
  await deps.audit.appendMany(
    groupId,
    results.map(({ address, result, via }) => ({ ...auditEntry({ source: via, action, address }, result), ...(actor ? { actor } : {}) })),
    fence,
  );
}

/**
 * Records a join that ended before any admission: turned away by the rules ("denied", with the reason the person
 * was shown) or failed ("error", with the error's name). Admissions record their own outcomes.
 */
export async function recordJoinEnded(
  deps: Pick<MembershipDeps, "audit">,
  join: { groupId: string; address: Address; source: JoinDoor },
  outcome: "denied" | "error",
  reason: string,
): Promise<void> {
  await deps.audit.append(join.groupId, { source: join.source, action: "join", address: join.address, outcome, reason });
}

/** Per-address outcome of an operator add. */
export type AddResult = { address: Address; result: AdmitOutcome };

/**
 * Adds wallets as the operator (rules bypassed) in one commit; everyone named becomes exempt from
 * re-verification. Inboxes are looked up side by side first; audited. The caller checks the group is ours.
 * @throws {XmtpUnavailableError} (503: the add may be asked again; nobody is added twice)
 * @throws {XmtpGroupNotFoundError}
 */
export async function addByOperator(deps: MembershipDeps, groupId: string, addresses: readonly Address[], actor?: string): Promise<AddResult[]> {
  const candidates = await Promise.all(addresses.map(async (address) => ({ address, inboxId: await inboxOf(deps, address) })));
  const outcomes = new Map<Address, AdmitOutcome>();
  // Recorded as each commit lands: a later commit that fails must not leave the earlier ones unrecorded.
  await deps.xmtp.withSession((session) =>
    admitBatch(session, groupId, candidates, async (decided) => {
      // The operator vouches for them: exempt from re-verification even if they first joined through the rules.
      await recordAdmitted(deps, groupId, [...decided].map(([address, result]) => ({ address, result, via: "operator" as const })), "add", () => "exempt", undefined, actor);
      for (const [address, result] of decided) outcomes.set(address, result);
    }),
  );
  if (outcomes.size < new Set(addresses).size) throw new XmtpUnavailableError("The session's time ran out before every address was decided");
  return addresses.map((address) => ({ address, result: outcomes.get(address)! }));
}

/** Why a reconciled member's audit entry was written. */
export const RECONCILED_REASON = "Found in the group on XMTP without a member record";

/**
 * Reconciles a group's member records with XMTP's member list: each inbox in the group (other than the backend's)
 * none of whose addresses is recorded gets a record (via "reconciled", its lowest address) and an audit entry, so
 * re-verification checks it like anyone else. A record written meanwhile by an admission is kept. `dryRun` only
 * answers who would be recorded. Answers the addresses found.
 * @throws {XmtpUnavailableError | XmtpGroupNotFoundError | XmtpOperationError | import("../shared/errors.js").StoreUnavailableError}
 */
export async function reconcileMembers(deps: MembershipDeps, groupId: string, options: { dryRun: boolean }): Promise<Address[]> {
  const { members, self } = await deps.xmtp.withSession(async (session) => ({ members: await session.listMembers(groupId), self: session.inboxId }));
  const recorded = new Set((await deps.members.list(groupId)).map((m) => m.address));
  const found = members
    .filter((m) => m.inboxId !== self && m.addresses.length > 0 && !m.addresses.some((a) => recorded.has(a)))
    .map((m) => [...m.addresses].sort()[0]!);
  if (found.length === 0 || options.dryRun) return found;
  await deps.members.recordMany(groupId, found.map((address) => ({ address, via: "reconciled" as const, mode: "keep" as const })));
  await deps.audit.appendMany(
    groupId,
    found.map((address) => ({ source: "reverify" as const, action: "join" as const, address, outcome: "already-member" as const, reason: RECONCILED_REASON })),
  );
  return found;
}

/** Per-address outcome of a removal. */
export type RemoveResult = { address: Address; result: "removed" | "not-a-member" | "not-on-xmtp" };

/**
 * Removes wallets in one commit; the backend's own inbox is never removed. Their member records, any recent
 * admission outcome (a retry of a join that ended "added" a moment ago must not answer SUCCESS) and any admission
 * still queued (it would add them back; it ends "unavailable") go too. Audited,
 * with `reason` when one is given (the cron's). The caller checks the group is ours.
 * @throws {XmtpUnavailableError}
 * @throws {XmtpGroupNotFoundError}
 */
export async function removeFromGroup(
  deps: MembershipDeps,
  groupId: string,
  addresses: readonly Address[],
  by: { source: AuditEntry["source"]; reason?: string; actor?: string },
): Promise<RemoveResult[]> {
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
    // Their admissions still queued must not add them back, nor a recent "added" answer a retry. Forgotten here,
    // holding the lease, so no holder is serving them meanwhile; and before the commit, so nothing re-adds them.
    await deps.admissions.forget(groupId, out.filter((r) => r.result !== "not-on-xmtp").map((r) => r.address));
    if (toRemove.length > 0) await session.removeMembers(groupId, toRemove);
    return out;
  });
  // Out of the group now (removed, or found already out).
  const out = results.filter((r) => r.result !== "not-on-xmtp").map((r) => r.address);
  await deps.members.remove(groupId, out);
  await deps.audit.appendMany(
    groupId,
    results.map(({ address, result }) => ({ source: by.source, action: "remove" as const, address, outcome: result, ...(by.reason ? { reason: by.reason } : {}), ...(by.actor ? { actor: by.actor } : {}) })),
  );
  return results;
}

const isIn = (outcome: AdmitOutcome) => outcome === "added" || outcome === "already-member";

/** The audit entry for an admission's outcome, with the person-facing reason when it kept them out. */
function auditEntry(entry: Pick<AuditEntry, "source" | "action" | "address">, outcome: AdmitOutcome): Omit<AuditEntry, "at"> {
  if (isIn(outcome)) return { ...entry, outcome };
  return { ...entry, outcome: outcome === "not-on-xmtp" ? "not-on-xmtp" : "denied", reason: ADMIT_DENIAL_REASONS[outcome] };
}
