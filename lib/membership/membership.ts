import type { AdmissionOutcome, AdmissionQueue, PendingAdmission } from "../stores/admission-queue.js";
import type { AuditEntry, AuditLog } from "../stores/audit-log.js";
import type { InboxCache } from "../stores/inbox-cache.js";
import type { MemberStore } from "../stores/members.js";
import type { Logger } from "../shared/log.js";
import { describeError } from "../shared/log.js";
import { ADMIT_DENIAL_REASONS, admitBatch, type AdmitOutcome } from "./admit-batch.js";
import {
  SessionNotNeededError,
  XmtpBusyError,
  XmtpGroupNotFoundError,
  XmtpUnavailableError,
  type Address,
  type XmtpPort,
  type XmtpSession,
} from "../xmtp/port.js";

/** Admissions of one group served in one session, at most (the queue may hold more). */
const BATCH_PER_GROUP = 250;

/** What admitting needs. */
export interface AdmissionDeps {
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
export async function inboxOf(deps: Pick<AdmissionDeps, "xmtp" | "inboxes">, address: Address): Promise<string | null> {
  const cached = await deps.inboxes.get(address);
  if (cached !== undefined) return cached;
  const found = await deps.xmtp.lookupInboxId(address);
  await deps.inboxes.set(address, found);
  return found;
}

/**
 * Admits one wallet that passed its group's rules. Its admission is queued in Redis with everyone else's, and
 * whichever instance holds the XMTP lease adds every waiting inbox of a group in one commit; this request either
 * becomes that holder or waits for its outcome. A request that gives up (its own deadline) leaves the admission
 * queued: it is served anyway, and the person's retry reads that outcome (the records are written once, by the
 * holder that served it).
 * @throws {XmtpUnavailableError} XMTP failed while serving it, or it was still waiting after `waitMs` (503: ask again).
 * @throws {XmtpBusyError} the lease stayed busy past `waitMs` (503: ask again).
 * @throws {import("../shared/errors.js").StoreUnavailableError}
 */
export async function admit(
  deps: AdmissionDeps,
  request: { groupId: string; address: Address; source: PendingAdmission["source"] },
  options: { waitMs?: number } = {},
): Promise<Exclude<AdmissionOutcome, "unavailable">> {
  const { groupId, address } = request;
  const inboxId = await inboxOf(deps, address);
  if (inboxId === null) return "not-on-xmtp";
  const queued = await deps.admissions.enqueue(groupId, { address, inboxId, source: request.source });
  if (queued.state === "done") return settled(queued.outcome);
  const deadline = Date.now() + (options.waitMs ?? 25_000);
  for (;;) {
    const outcome = await deps.admissions.outcome(groupId, address);
    if (outcome) return settled(outcome);
    // Given up: the admission stays queued, and is served with the next ones.
    if (Date.now() >= deadline) throw new XmtpUnavailableError("Admission still waiting when the request's time ran out");
    try {
      await deps.xmtp.withSession((session) => serveAdmissions(deps, session), { watch: deps.admissions.watch(groupId, address) });
    } catch (error) {
      if (error instanceof SessionNotNeededError || error instanceof XmtpBusyError) continue;
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
 * and the audit entry are written here, once, before the outcome (a crash in between serves it again: it is then
 * "already a member"). A network failure ends the batch's admissions as "unavailable" (their requests answer 503)
 * and stops serving.
 * @throws {XmtpUnavailableError | import("../shared/errors.js").StoreUnavailableError}
 */
export async function serveAdmissions(deps: AdmissionDeps, session: XmtpSession): Promise<void> {
  for (;;) {
    let served = 0;
    for (const groupId of await deps.admissions.groups()) {
      if (Date.now() >= session.deadline) return;
      const batch = await deps.admissions.take(groupId, BATCH_PER_GROUP);
      if (batch.length === 0) continue;
      served += batch.length;
      let outcomes: Map<Address, AdmitOutcome>;
      try {
        outcomes = await admitBatch(session, groupId, batch);
      } catch (error) {
        const outcome: AdmissionOutcome = error instanceof XmtpGroupNotFoundError ? "group-gone" : "unavailable";
        if (outcome === "group-gone") deps.logger.error("group_missing_on_xmtp", { groupId });
        else deps.logger.warn("admissions_unavailable", { groupId, admissions: batch.length, error: describeError(error) });
        await deps.admissions.complete(groupId, batch.map((a) => ({ address: a.address, outcome })));
        if (outcome === "unavailable") throw error;
        continue;
      }
      const decided = batch.filter((a) => outcomes.has(a.address));
      await record(deps, groupId, decided, outcomes);
      await deps.admissions.complete(groupId, decided.map((a) => ({ address: a.address, outcome: outcomes.get(a.address)! })));
    }
    if (served === 0) return;
  }
}

async function record(deps: AdmissionDeps, groupId: string, decided: readonly PendingAdmission[], outcomes: ReadonlyMap<Address, AdmitOutcome>): Promise<void> {
  // Added now through the rules: that is how they joined (an earlier operator exemption no longer applies).
  // Already a member: whatever was recorded stays (an operator's add keeps them exempt).
  await deps.members.recordMany(
    groupId,
    decided.flatMap((a) => {
      const outcome = outcomes.get(a.address);
      return outcome === "added" || outcome === "already-member" ? [{ address: a.address, via: a.source, mode: outcome === "added" ? ("replace" as const) : ("keep" as const) }] : [];
    }),
  );
  // A cached inbox XMTP would not add may be out of date: look it up afresh next time.
  for (const a of decided) if (outcomes.get(a.address) === "refused") await deps.inboxes.forget(a.address);
  await deps.audit.appendMany(
    groupId,
    decided.map((admission) => {
      const outcome = outcomes.get(admission.address)!;
      const entry: Omit<AuditEntry, "at"> = { source: admission.source, action: "join", address: admission.address, outcome: auditOutcome(outcome) };
      return outcome === "added" || outcome === "already-member" ? entry : { ...entry, reason: ADMIT_DENIAL_REASONS[outcome] };
    }),
  );
}

const auditOutcome = (outcome: AdmitOutcome): AuditEntry["outcome"] =>
  outcome === "added" || outcome === "already-member" || outcome === "not-on-xmtp" ? outcome : "denied";
