import type { EligibilityChecker } from "../eligibility/evaluate.js";
import { EligibilitySourceError } from "../eligibility/evaluate.js";
import type { GroupRegistry } from "../stores/registry.js";
import type { ReverifyCursor, ReverifyCursorStore } from "../stores/reverify-cursor.js";
import { describeError } from "../shared/log.js";
import { inboxOf, MAX_MEMBER_BATCH, personWallets, reconcileMembers, removeFromGroup, type MembershipDeps } from "../membership/membership.js";
import type { RemovalNoticeStore } from "../stores/removal-notices.js";
import type { Config } from "../config.js";
import { XmtpOperationError, XmtpUnavailableError } from "../xmtp/port.js";
import { DependencyUnavailableError } from "../shared/errors.js";
import type { Address } from "../shared/address.js";

/** Bounds of one re-verification run (a Vercel cron invocation must finish within maxDuration). */
export interface ReverifyLimits {
  readonly groupsPerRun: number;
  readonly checksPerRun: number;
  readonly removalsPerGroup: number;
  /** Warning DMs sent per group per run (each is an XMTP write under the lease); the rest are warned next run. */
  readonly warningsPerGroup: number;
  /** No new check or removal starts once this much time has passed (the function may run 60 s). */
  readonly timeBudgetMs: number;
}

/**
 * Defaults: bounded by time, not by counts. The cron's function may run 300 s (`vercel.json`); no new group, check,
 * warning or removal starts after 230 s, which leaves a whole XMTP session (at most 50 s) and the response room.
 * Up to 1,000 groups and 250,000 checks per run, every removal of a group (in commits of {@link MAX_MEMBER_BATCH}),
 * 50 warnings per group.
 */
export const DEFAULT_REVERIFY_LIMITS: ReverifyLimits = { groupsPerRun: 1000, checksPerRun: 250_000, removalsPerGroup: 250, warningsPerGroup: 50, timeBudgetMs: 230_000 };

/**
 * Members checked side by side. Their reads made in the same tick go out together: one JSON-RPC batch per chain
 * (see the on-chain source), so a group of 250 costs a few HTTP requests per chain, not hundreds.
 */
export const CHECK_CONCURRENCY = 128;

/**
 * Runs `fn` over `items` in order, at most `concurrency` at a time, starting none once `stop()` says so. What was
 * started always finishes, so the items done are a prefix of `items` (a cursor can point at the last of them).
 */
async function inOrder<T, R>(items: readonly T[], concurrency: number, stop: () => boolean, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results.slice(0, next);
}

/** What a run did (or, dry, would do). */
export interface ReverifyReport {
  readonly dryRun: boolean;
  readonly groupsChecked: number;
  readonly membersChecked: number;
  readonly removed: { groupId: string; address: string; reason: string }[];
  /** Members who no longer qualify, sent a direct message (unless dry) saying why and from when they will be removed. */
  readonly warned: { groupId: string; address: string; reason: string; removeAfter: string }[];
  /** Warned members who qualify again: their removal is called off. */
  readonly cancelled: { groupId: string; address: string }[];
  /** Warned members still within their grace period (removed at the first run after it ends if they still do not qualify). */
  readonly inGrace: number;
  /** Members to warn that this run could not (cap, time, or XMTP failing): warned by a later run, their grace starting then. */
  readonly warningsDeferred: number;
  /** Members found in a group on XMTP without a record: recorded (unless dry) and checked like the others. */
  readonly reconciled: { groupId: string; address: string }[];
  /** Members whose holdings could not be read: kept, checked again next time. */
  readonly skipped: { groupId: string; address: string }[];
  /** Groups that failed (XMTP, a record that does not parse, …): recorded, passed over, tried again next round. */
  readonly failedGroups: { groupId: string; error: string }[];
  /** Members over the per-group removal cap this run: removed by a later run. */
  readonly deferred: number;
  /** Why the run ended: every group of its share done, or a bound reached (the next run resumes there). */
  readonly stoppedBy: "done" | "time" | "checks";
  /** Where the next run starts: the group's position (0 = from the newest group again) and, mid-group, the last member checked. */
  readonly nextCursor: number;
  readonly nextAfter: string | null;
}

/** What re-verification needs. */
export interface ReverifyDeps extends MembershipDeps {
  readonly registry: Pick<GroupRegistry, "list" | "get">;
  readonly eligibility: EligibilityChecker;
  readonly reverifyCursor: ReverifyCursorStore;
  readonly notices: RemovalNoticeStore;
  readonly config: Pick<Config, "reverify">;
}

/** The direct message a member gets when re-verification finds they no longer qualify. */
export function warningText(groupName: string, reason: string, removeAfter: Date): string {
  const when = `${removeAfter.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return `You no longer meet the requirements of "${groupName}": ${reason}. Unless you meet them again, you will be removed at the first check after ${when}.`;
}

/**
 * Re-checks members who joined through the rules against their group's current rules (every wallet linked to their
 * inbox counted); a member who no longer qualifies is first sent a direct message saying why and when they will be
 * removed, and is removed only if they still do not qualify at the first run after `REVERIFY_GRACE_HOURS` (qualifying
 * again meanwhile calls it off; 0 hours removes at once, unwarned). Operator-added members and the backend are
 * exempt; anyone in a group on XMTP without a member record is recorded first and checked too. Bounded per run (groups, checks, removals,
 * time); the cursor is saved after every group (and where a group was left midway), so a run killed at the
 * function's limit loses nothing; a source failure keeps the member; a group that fails is recorded and passed
 * over; every removal is audited with its reason.
 * @throws {import("../shared/errors.js").StoreUnavailableError} Redis could not be reached (the cursor is where it was).
 */
export async function reverifyMembers(
  deps: ReverifyDeps,
  options: { dryRun: boolean; limits?: Partial<ReverifyLimits>; now?: () => number },
): Promise<ReverifyReport> {
  const limits = { ...DEFAULT_REVERIFY_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;
  const started = now();
  const overTime = () => now() - started >= limits.timeBudgetMs;
  const cursor = await deps.reverifyCursor.read();
  const { groupIds, total } = await deps.registry.list({ offset: cursor.group, limit: limits.groupsPerRun });
  const report = {
    dryRun: options.dryRun,
    groupsChecked: 0,
    membersChecked: 0,
    removed: [] as ReverifyReport["removed"],
    warned: [] as ReverifyReport["warned"],
    cancelled: [] as ReverifyReport["cancelled"],
    inGrace: 0,
    warningsDeferred: 0,
    reconciled: [] as ReverifyReport["reconciled"],
    skipped: [] as ReverifyReport["skipped"],
    failedGroups: [] as ReverifyReport["failedGroups"],
    deferred: 0,
    stoppedBy: "done" as ReverifyReport["stoppedBy"],
  };
  const save = async (group: number, after: string | null) => {
    const next: ReverifyCursor = { group: group >= total ? 0 : group, after };
    if (!options.dryRun) await deps.reverifyCursor.save(next);
    return { nextCursor: next.group, nextAfter: next.after };
  };

  let position = { nextCursor: cursor.group, nextAfter: cursor.after };
  for (const [i, groupId] of groupIds.entries()) {
    const index = cursor.group + i;
    if (overTime()) {
      report.stoppedBy = "time";
      break;
    }
    if (report.membersChecked >= limits.checksPerRun) {
      report.stoppedBy = "checks";
      break;
    }
    const after = i === 0 ? cursor.after : null;
    let stoppedAfter: string | null = null;
    try {
      const group = await deps.registry.get(groupId);
      if (group?.state === "active") {
        report.groupsChecked++;
        // Whoever is in the group without a record (a commit that landed when its batch failed) is checked too.
        const found = await reconcileMembers(deps, groupId, { dryRun: options.dryRun });
        report.reconciled.push(...found.map((address) => ({ groupId, address })));
        const recorded = (await deps.members.list(groupId)).filter((m) => m.via !== "operator").map((m) => m.address);
        const members = [...new Set([...recorded, ...found])]
          .filter((address) => after === null || address > after)
          .sort();
        const toRemove: { address: Address; reason: string }[] = [];
        const toWarn: { address: Address; reason: string }[] = [];
        const toCancel: Address[] = [];
        const notices = await deps.notices.list(groupId);
        const graceMs = deps.config.reverify.graceHours * 3_600_000;
        const outOfChecks = () => overTime() || report.membersChecked >= limits.checksPerRun;
        const answers = await inOrder(members, CHECK_CONCURRENCY, outOfChecks, async (address) => {
          report.membersChecked++;
          try {
            return { address, answer: await deps.eligibility.check(group.rules, await personWallets(deps, address)) };
          } catch (error) {
            // Holdings or linked wallets that cannot be read keep the member: checked again next run.
            if (error instanceof EligibilitySourceError || error instanceof XmtpUnavailableError) return { address, answer: null };
            throw error;
          }
        });
        if (answers.length < members.length) {
          stoppedAfter = answers.at(-1)?.address ?? after;
          report.stoppedBy = overTime() ? "time" : "checks";
        }
        for (const { address, answer } of answers) {
          const notice = notices.get(address);
          if (answer === null) report.skipped.push({ groupId, address });
          else if (answer.eligible) {
            if (notice) toCancel.push(address);
          } else if (graceMs === 0 || (notice && Date.parse(notice.removeAfter) <= now())) toRemove.push({ address, reason: answer.reason });
          else if (notice) report.inGrace++;
          else toWarn.push({ address, reason: answer.reason });
        }
        if (toCancel.length > 0 && !options.dryRun) {
          await deps.notices.clear(groupId, toCancel);
          await deps.audit.appendMany(groupId, toCancel.map((address) => ({ source: "reverify" as const, action: "warn" as const, address, outcome: "warning-cancelled" as const })));
        }
        report.cancelled.push(...toCancel.map((address) => ({ groupId, address })));
        const warned = await warn(deps, groupId, group.name, toWarn.slice(0, limits.warningsPerGroup), { dryRun: options.dryRun, graceMs, now, overTime });
        report.warned.push(...warned);
        report.warningsDeferred += toWarn.length - warned.length;
        const removeNow = toRemove.slice(0, limits.removalsPerGroup);
        report.deferred += toRemove.length - removeNow.length;
        // One commit per reason and per MAX_MEMBER_BATCH; none starts once the time is spent. Those left are checked
        // again by the next run, which starts just before the first of them.
        const commits: { reason: string; addresses: Address[] }[] = [];
        for (const r of removeNow) {
          const open = commits.find((c) => c.reason === r.reason && c.addresses.length < MAX_MEMBER_BATCH);
          if (open) open.addresses.push(r.address);
          else commits.push({ reason: r.reason, addresses: [r.address] });
        }
        const removed = new Set<Address>();
        for (const commit of commits) {
          if (overTime()) break;
          if (!options.dryRun) {
            await removeFromGroup(deps, groupId, commit.addresses, { source: "reverify", reason: commit.reason });
            await deps.notices.clear(groupId, commit.addresses);
          }
          for (const address of commit.addresses) removed.add(address);
        }
        const leftOver = removeNow.filter((r) => !removed.has(r.address)).map((r) => r.address).sort();
        if (leftOver.length > 0) {
          const first = members.indexOf(leftOver[0]!);
          stoppedAfter = first > 0 ? members[first - 1]! : after;
          report.stoppedBy = "time";
          report.deferred += leftOver.length;
        }
        report.removed.push(...removeNow.filter((r) => removed.has(r.address)).map((r) => ({ groupId, ...r })));
      }
    } catch (error) {
      // One group that cannot be checked (gone on XMTP, a corrupt record, …) must not stall every later group.
      report.failedGroups.push({ groupId, error: error instanceof Error ? error.name : "Error" });
      deps.logger.error("reverify_group_failed", { groupId, error: describeError(error) });
    }
    const midGroup = report.stoppedBy !== "done";
    position = midGroup ? await save(index, stoppedAfter) : await save(index + 1, null);
    if (midGroup) break;
  }
  if (report.stoppedBy === "done" && groupIds.length === 0) position = await save(total, null);
  deps.logger.info("reverify_run", {
    dryRun: options.dryRun,
    groups: report.groupsChecked,
    checked: report.membersChecked,
    removed: report.removed.length,
    warned: report.warned.length,
    cancelled: report.cancelled.length,
    reconciled: report.reconciled.length,
    skipped: report.skipped.length,
    failed: report.failedGroups.length,
    stoppedBy: report.stoppedBy,
  });
  if (!options.dryRun) {
    await deps.reverifyCursor.saveLastRun({
      at: new Date(started).toISOString(),
      groupsChecked: report.groupsChecked,
      membersChecked: report.membersChecked,
      removed: report.removed.length,
      reconciled: report.reconciled.length,
      skipped: report.skipped.length,
      failedGroups: report.failedGroups.length,
      stoppedBy: report.stoppedBy,
    });
  }
  return { ...report, ...position };
}

/**
 * Sends each member a direct message saying what they lack and when they will be removed, then records the notice
 * and audits it; all in one session, stopping when the run's time is spent or XMTP fails (the rest are warned next
 * run, their grace starting then: nobody is removed on a warning that was not sent). Dry: says who would be warned.
 * @returns the members warned (or, dry, who would be).
 */
async function warn(
  deps: ReverifyDeps,
  groupId: string,
  groupName: string,
  members: readonly { address: Address; reason: string }[],
  options: { dryRun: boolean; graceMs: number; now: () => number; overTime: () => boolean },
): Promise<ReverifyReport["warned"]> {
  const at = options.now();
  const removeAfter = new Date(at + options.graceMs).toISOString();
  if (members.length === 0) return [];
  if (options.dryRun) return members.map((m) => ({ groupId, ...m, removeAfter }));
  const inboxes = await Promise.all(members.map(async (m) => ({ ...m, inboxId: await inboxOf(deps, m.address).catch(() => null) })));
  const sent: ReverifyReport["warned"] = [];
  try {
    await deps.xmtp.withSession(async (session) => {
      for (const m of inboxes) {
        if (m.inboxId === null || options.overTime() || Date.now() >= session.deadline) break;
        await session.sendDirectMessage(m.inboxId, warningText(groupName, m.reason, new Date(removeAfter)));
        // Recorded once the message is out: a notice is never standing for a warning nobody received.
        await deps.notices.set(groupId, m.address, { warnedAt: new Date(at).toISOString(), removeAfter, reason: m.reason });
        await deps.audit.append(groupId, { source: "reverify", action: "warn", address: m.address, outcome: "warned", reason: m.reason });
        sent.push({ groupId, address: m.address, reason: m.reason, removeAfter });
      }
    });
  } catch (error) {
    // XMTP or Redis unavailable, or a DM refused: the rest wait for the next run. Anything else is a bug: the group fails.
    if (!(error instanceof DependencyUnavailableError || error instanceof XmtpOperationError)) throw error;
    deps.logger.warn("reverify_warning_failed", { groupId, sent: sent.length, error: describeError(error) });
  }
  return sent;
}
