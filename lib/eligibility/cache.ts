import { createHash } from "node:crypto";
import type { Redis } from "../shared/redis.js";
import type { Eligibility, EligibilityChecker } from "./evaluate.js";

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
      const cached = await redis.get<string>(key).catch(() => null);
      if (typeof cached === "string") {
        try {
          const parsed = JSON.parse(cached) as Eligibility;
          if (parsed.eligible === true || (parsed.eligible === false && typeof parsed.reason === "string")) {
            stats.hits++;
            return parsed;
          }
        } catch {
          // fall through to a fresh check
        }
      }
      stats.misses++;
      const answer = await checker.check(rules, address);
      await redis.set(key, JSON.stringify(answer), { ex: ttlSeconds }).catch(() => undefined);
      return answer;
    },
  };
}
