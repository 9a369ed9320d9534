import type { EligibilityChecker } from "./eligibility/evaluate.js";
import { EligibilitySourceError } from "./eligibility/evaluate.js";
import type { MemberStore } from "./groups/members.js";
import type { GroupRegistry } from "./groups/registry.js";
import type { Logger } from "./log.js";
import { removeMembers, type OperatorDeps } from "./operator.js";
import type { Redis } from "./redis.js";
import { storeCall } from "./redis.js";
import type { Address } from "./xmtp/port.js";

/** Bounds of one re-verification run (a Vercel cron invocation must finish within maxDuration). */
export interface ReverifyLimits {
  readonly groupsPerRun: number;
  readonly checksPerRun: number;
  readonly removalsPerGroup: number;
}

/** Defaults: 20 groups, 500 checks, 10 removals per group per run. */
export const DEFAULT_REVERIFY_LIMITS: ReverifyLimits = { groupsPerRun: 20, checksPerRun: 500, removalsPerGroup: 10 };

/** What a run did (or, dry, would do). */
export interface ReverifyReport {
  readonly dryRun: boolean;
  readonly groupsChecked: number;
  readonly membersChecked: number;
  readonly removed: { groupId: string; address: string; reason: string }[];
  /** Members whose holdings could not be read: kept, checked again next time. */
  readonly skipped: { groupId: string; address: string }[];
  /** Members over the per-group removal cap this run: removed by a later run. */
  readonly deferred: number;
  /** Where the next run starts (0 = from the newest group again). */
  readonly nextCursor: number;
}

/** What re-verification needs. */
export interface ReverifyDeps extends OperatorDeps {
  readonly redis: Redis;
  readonly config: OperatorDeps["config"] & { readonly redis: { readonly keyPrefix: string } };
  readonly registry: GroupRegistry;
  readonly members: MemberStore;
  readonly eligibility: OperatorDeps["eligibility"] & EligibilityChecker;
  readonly logger: Logger;
}

/**
 * Re-checks members who joined through the rules against their group's current rules and removes those who no
 * longer qualify (operator-added members and the backend are exempt). Bounded per run; a cursor in Redis resumes
 * where the last run stopped; a source failure keeps the member; every removal is audited with its reason.
 * @throws {import("./errors.js").StoreUnavailableError | import("./xmtp/port.js").XmtpUnavailableError}
 */
export async function reverifyMembers(deps: ReverifyDeps, options: { dryRun: boolean; limits?: ReverifyLimits }): Promise<ReverifyReport> {
  const limits = options.limits ?? DEFAULT_REVERIFY_LIMITS;
  const cursorKey = `${deps.config.redis.keyPrefix}:reverify:cursor`;
  const start = Number((await storeCall("read cursor", () => deps.redis.get<string>(cursorKey))) ?? 0) || 0;
  const { groupIds, total } = await deps.registry.list({ offset: start, limit: limits.groupsPerRun });
  const report = { dryRun: options.dryRun, groupsChecked: 0, membersChecked: 0, removed: [] as ReverifyReport["removed"], skipped: [] as ReverifyReport["skipped"], deferred: 0 };
  let processed = 0;
  for (const groupId of groupIds) {
    if (report.membersChecked >= limits.checksPerRun) break;
    processed++;
    const group = await deps.registry.get(groupId);
    if (!group || group.state !== "active") continue;
    report.groupsChecked++;
    const toRemove: { address: Address; reason: string }[] = [];
    for (const member of await deps.members.list(groupId)) {
      if (member.via === "operator") continue;
      if (report.membersChecked >= limits.checksPerRun) break;
      report.membersChecked++;
      try {
        const answer = await deps.eligibility.check(group.rules, member.address as Address);
        if (!answer.eligible) toRemove.push({ address: member.address as Address, reason: answer.reason });
      } catch (error) {
        if (!(error instanceof EligibilitySourceError)) throw error;
        report.skipped.push({ groupId, address: member.address });
      }
    }
    const now = toRemove.slice(0, limits.removalsPerGroup);
    report.deferred += toRemove.length - now.length;
    if (!options.dryRun) {
      const byReason = new Map<string, Address[]>();
      for (const r of now) byReason.set(r.reason, [...(byReason.get(r.reason) ?? []), r.address]);
      for (const [reason, addresses] of byReason) await removeMembers(deps, groupId, addresses, "reverify", reason);
    }
    report.removed.push(...now.map((r) => ({ groupId, ...r })));
  }
  const next = start + processed >= total ? 0 : start + processed;
  if (!options.dryRun) await storeCall("write cursor", () => deps.redis.set(cursorKey, String(next)));
  deps.logger.info("reverify_run", { dryRun: options.dryRun, groups: report.groupsChecked, checked: report.membersChecked, removed: report.removed.length, skipped: report.skipped.length });
  return { ...report, nextCursor: next };
}
