import type { EligibilityChecker } from "../eligibility/evaluate.js";
import { EligibilitySourceError } from "../eligibility/evaluate.js";
import type { GroupRegistry } from "../stores/registry.js";
import type { ReverifyCursor, ReverifyCursorStore } from "../stores/reverify-cursor.js";
import { describeError } from "../shared/log.js";
import { personWallets, reconcileMembers, removeFromGroup, type MembershipDeps } from "../membership/membership.js";
import { XmtpUnavailableError } from "../xmtp/port.js";
import type { Address } from "../shared/address.js";

/** Bounds of one re-verification run (a Vercel cron invocation must finish within maxDuration). */
export interface ReverifyLimits {
  readonly groupsPerRun: number;
  readonly checksPerRun: number;
  readonly removalsPerGroup: number;
  /** No new check or removal starts once this much time has passed (the function may run 60 s). */
  readonly timeBudgetMs: number;
}

/** Defaults: 20 groups, 500 checks, 10 removals per group, 40 s per run. */
export const DEFAULT_REVERIFY_LIMITS: ReverifyLimits = { groupsPerRun: 20, checksPerRun: 500, removalsPerGroup: 10, timeBudgetMs: 40_000 };

/** Members checked side by side: each check is a few JSON-RPC reads. */
const CHECK_CONCURRENCY = 4;

/** What a run did (or, dry, would do). */
export interface ReverifyReport {
  readonly dryRun: boolean;
  readonly groupsChecked: number;
  readonly membersChecked: number;
  readonly removed: { groupId: string; address: string; reason: string }[];
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
}

/**
 * Re-checks members who joined through the rules against their group's current rules and removes those who no
 * longer qualify (operator-added members and the backend are exempt); anyone in a group on XMTP without a member
 * record is recorded first and checked too. Bounded per run (groups, checks, removals,
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
        let next = 0;
        while (next < members.length) {
          if (overTime() || report.membersChecked >= limits.checksPerRun) {
            stoppedAfter = members[next - 1] ?? after;
            report.stoppedBy = overTime() ? "time" : "checks";
            break;
          }
          const batch = members.slice(next, next + Math.min(CHECK_CONCURRENCY, limits.checksPerRun - report.membersChecked));
          report.membersChecked += batch.length;
          next += batch.length;
          const answers = await Promise.all(
            batch.map(async (address) => {
              try {
                return { address, answer: await deps.eligibility.check(group.rules, await personWallets(deps, address)) };
              } catch (error) {
                // Holdings or linked wallets that cannot be read keep the member: checked again next run.
                if (error instanceof EligibilitySourceError || error instanceof XmtpUnavailableError) return { address, answer: null };
                throw error;
              }
            }),
          );
          for (const { address, answer } of answers) {
            if (answer === null) report.skipped.push({ groupId, address });
            else if (!answer.eligible) toRemove.push({ address, reason: answer.reason });
          }
        }
        const removeNow = toRemove.slice(0, limits.removalsPerGroup);
        report.deferred += toRemove.length - removeNow.length;
        if (!options.dryRun) {
          const byReason = new Map<string, Address[]>();
          for (const r of removeNow) byReason.set(r.reason, [...(byReason.get(r.reason) ?? []), r.address]);
          for (const [reason, addresses] of byReason) await removeFromGroup(deps, groupId, addresses, { source: "reverify", reason });
        }
        report.removed.push(...removeNow.map((r) => ({ groupId, ...r })));
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
    reconciled: report.reconciled.length,
    skipped: report.skipped.length,
    failed: report.failedGroups.length,
    stoppedBy: report.stoppedBy,
  });
  return { ...report, ...position };
}
