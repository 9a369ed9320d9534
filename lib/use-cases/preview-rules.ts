import type { EligibilityService } from "../eligibility/service.js";
import { describeRules } from "../eligibility/evaluate.js";
import type { Rules } from "../shared/rules.js";

/**
 * Runs the create checks on `rules` and answers them as they would be stored (with what the chain says: symbol,
 * decimals, collection name) and in the words the join page will show. Creates and stores nothing: the dashboard's
 * builder asks it on the way (`POST /api/create?dryRun=1`).
 * @throws {import("../shared/errors.js").InvalidRequestError} a rule no join could use (400, with the rule's path).
 * @throws {import("../eligibility/evaluate.js").EligibilitySourceError} a chain could not be reached (503).
 */
export async function previewRules(deps: { readonly eligibility: Pick<EligibilityService, "prepare"> }, rules: Rules): Promise<{ rules: Rules; requirement: string }> {
  const prepared = await deps.eligibility.prepare(rules);
  return { rules: prepared, requirement: describeRules(prepared) };
}
