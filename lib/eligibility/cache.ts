import { createHash } from "node:crypto";
import * as v from "valibot";
import { parseStored, type Redis } from "../shared/redis.js";
import { walletsOf, type EligibilityChecker, type VaultAwareChecker } from "./evaluate.js";

// An answer, and the fingerprint of the delegations it counted (absent in answers cached before delegations counted).
const CachedAnswerSchema = v.variant("eligible", [
  v.object({ eligible: v.literal(true), vaults: v.optional(v.string()) }),
  v.object({ eligible: v.literal(false), reason: v.string(), vaults: v.optional(v.string()) }),
]);
const isVaultAware = (checker: EligibilityChecker): checker is VaultAwareChecker => "checkCounting" in checker && "vaults" in checker;

/**
 * Caches answers in Redis for `ttlSeconds` per (scope, wallets, rules, delegations): a person retrying a join does
 * not re-read balances, a change of rules is never answered from the old ones, a wallet newly linked to the person's
 * inbox (a new set of wallets) is counted at once, and so is a delegation made since (a hit is used only while the
 * delegations it counted are still the ones the registry lists: one small read). Only answers are cached, never
 * failures; a cache that cannot be reached is skipped.
 */
export function withEligibilityCache(checker: EligibilityChecker, redis: Redis, keyPrefix: string, ttlSeconds: number): EligibilityChecker & {
  stats: { hits: number; misses: number };
} {
  const stats = { hits: 0, misses: 0 };
  return {
    stats,
    async check(rules, given, scope) {
      const wallets = walletsOf(given);
      if (!scope || ttlSeconds <= 0) return checker.check(rules, wallets);
      const rulesHash = createHash("sha256").update(JSON.stringify(rules)).digest("hex").slice(0, 16);
      // The set of wallets counted, in any order: a wallet linked or unlinked since makes another key.
      const walletsHash = createHash("sha256").update([...wallets].sort().join(",")).digest("hex").slice(0, 16);
      const key = `${keyPrefix}:elig:${scope}:${walletsHash}:${rulesHash}`;
      const cached = parseStored(CachedAnswerSchema, await redis.get<string>(key).catch(() => null));
      const aware = isVaultAware(checker) ? checker : null;
      if (cached && (!aware || cached.vaults === (await aware.vaults(rules, wallets)))) {
        stats.hits++;
        return cached.eligible ? { eligible: true } : { eligible: false, reason: cached.reason };
      }
      stats.misses++;
      const { answer, vaults } = aware ? await aware.checkCounting(rules, wallets) : { answer: await checker.check(rules, wallets), vaults: undefined };
      await redis.set(key, JSON.stringify({ ...answer, ...(vaults !== undefined ? { vaults } : {}) }), { ex: ttlSeconds }).catch(() => undefined);
      return answer;
    },
  };
}
