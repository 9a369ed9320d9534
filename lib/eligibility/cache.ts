import { createHash } from "node:crypto";
import * as v from "valibot";
import { parseStored, type Redis } from "../shared/redis.js";
import { walletsOf, type Eligibility, type EligibilityChecker } from "./evaluate.js";

const CachedAnswerSchema: v.GenericSchema<unknown, Eligibility> = v.variant("eligible", [
  v.object({ eligible: v.literal(true) }),
  v.object({ eligible: v.literal(false), reason: v.string() }),
]);

/**
 * Caches answers in Redis for `ttlSeconds` per (scope, wallets, rules): a person retrying a join does not
 * re-read the chain, a change of rules is never answered from the old ones, and a wallet newly linked to the
 * person's inbox (a new set of wallets) is counted at once. Only answers are cached, never failures; a cache that
 * cannot be reached is skipped.
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
      if (cached) {
        stats.hits++;
        return cached;
      }
      stats.misses++;
      const answer = await checker.check(rules, wallets);
      await redis.set(key, JSON.stringify(answer), { ex: ttlSeconds }).catch(() => undefined);
      return answer;
    },
  };
}
