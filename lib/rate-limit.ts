import { RateLimitedError } from "./errors.js";
import type { Redis } from "./redis.js";
import { storeCall } from "./redis.js";

/** A limit: at most `limit` requests per `windowSeconds`. */
export interface RateLimit {
  readonly limit: number;
  readonly windowSeconds: number;
}

// Sliding window (the algorithm @upstash/ratelimit uses): the previous fixed window's count weighted by how
// much of it still overlaps the sliding window, plus the current window's count. One atomic step.
const SLIDING_WINDOW = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
local limit = tonumber(ARGV[3])
local current = math.floor(now / window)
local curKey = KEYS[1] .. ':' .. current
local prevKey = KEYS[1] .. ':' .. (current - 1)
local prev = tonumber(redis.call('GET', prevKey) or '0')
local cur = tonumber(redis.call('GET', curKey) or '0')
local weight = 1 - ((now % window) / window)
local used = math.floor(prev * weight) + cur
if used >= limit then
  return {0, math.ceil((window - (now % window)) / 1000)}
end
redis.call('INCR', curKey)
redis.call('PEXPIRE', curKey, window * 2)
return {1, 0}
`;

/** A sliding-window rate limiter in Redis. */
export function createRateLimiter(redis: Redis, keyPrefix: string, now: () => number = Date.now) {
  return {
    /**
     * Counts one request against `limit` under `key`.
     * @throws {RateLimitedError} when the limit is reached (with seconds to wait).
     */
    async hit(key: string, limit: RateLimit, message: string): Promise<void> {
      const reply = await storeCall("rate limit", () =>
        redis.eval<string[], [number, number]>(SLIDING_WINDOW, [`${keyPrefix}:rl:${key}`], [String(now()), String(limit.windowSeconds), String(limit.limit)]),
      );
      const [allowed, retryAfter] = reply.map(Number);
      if (allowed !== 1) throw new RateLimitedError(message, Math.max(1, retryAfter ?? 1));
    },
  };
}

/** The rate limiter's interface. */
export type RateLimiter = ReturnType<typeof createRateLimiter>;
