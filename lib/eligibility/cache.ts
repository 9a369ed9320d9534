import { createHash } from "node:crypto";
import * as v from "valibot";
import { parseStored, type Redis } from "../shared/redis.js";
import type { Eligibility, EligibilityChecker } from "./evaluate.js";

const CachedAnswerSchema: v.GenericSchema<unknown, Eligibility> = v.variant("eligible", [
  v.object({ eligible: v.literal(true) }),
  v.object({ eligible: v.literal(false), reason: v.string() }),
]);

/**
 * Caches answers in Redis for `ttlSeconds` per (scope, wallet, rules): a person retrying a join does not
 * re-read the chain, and a change of rules is never answered from the old ones. Only answers are cached,
 * never failures; a cache that cannot be reached is skipped.
 */
export function withEligibilityCache(checker: EligibilityChecker, redis: Redis, keyPrefix: string, ttlSeconds: number): EligibilityChecker & {
  stats: { hits: number; misses: number };
} {
  const stats = { hits: 0, misses: 0 };
  return {
    stats,
    async check(rules, address, scope) {
      if (!scope || ttlSeconds <= 0) return checker.check(rules, address);
      const rulesHash = createHash("sha256").update(JSON.stringify(rules)).digest("hex").slice(0, 16);
      const key = `${keyPrefix}:elig:${scope}:${address}:${rulesHash}`;
      const cached = parseStored(CachedAnswerSchema, await redis.get<string>(key).catch(() => null));
      if (cached) {
        stats.hits++;
        return cached;
      }
      stats.misses++;
      const answer = await checker.check(rules, address);
      await redis.set(key, JSON.stringify(answer), { ex: ttlSeconds }).catch(() => undefined);
      return answer;
    },
  };
}
