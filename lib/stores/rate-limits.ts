import type { Config } from "../config.js";
import * as v from "valibot";
import { CorruptStateError, RateLimitedError } from "../shared/errors.js";
import { storeCall, type Redis } from "../shared/redis.js";

/** A limit: at most `limit` requests per `windowSeconds`. */
export interface RateLimit {
  readonly limit: number;
  readonly windowSeconds: number;
}

/** A named limit: what it counts by (the subject), which configured limit it uses, and what the person reads. */
interface LimitPolicy {
  readonly limit: (limits: Config["rateLimits"]) => RateLimit;
  readonly message: string;
}

/**
 * Every limit the service applies, in one place (the README's security section lists them with their reasons).
 * Subjects: IPs are counted per address for IPv4 and per /64 for IPv6 (see {@link ipSubject}).
 */
export const LIMIT_POLICIES = {
  /** Webhook calls per claimed wallet (the link service sends few IPs): one wallet cannot hammer a group. */
  webhookPerWallet: { limit: (l) => l.perWallet, message: "Too many join requests from this wallet; try again later" },
  /**
   * Admissions per group, webhook and join page together, charged only once a wallet has passed the group's rules
   * (right before XMTP work): keeps the group under XMTP's write ceiling, and ineligible wallets cannot use it up.
   */
  admissionsPerGroup: { limit: (l) => l.perGroup, message: "Too many join requests for this group right now; try again later" },
  /** Sign-in challenges per client IP. */
  challengePerIp: { limit: (l) => l.joinPerIp, message: "Too many join attempts from this network; try again later" },
  /** Sign-in challenges per (address, IP): nobody can use up someone else's address from their own network. */
  challengePerAddressAndIp: { limit: (l) => l.joinPerAddress, message: "Too many join attempts for this wallet; try again later" },
  /** Signed join submissions per client IP, counted before anything is checked. */
  joinPerIp: { limit: (l) => l.joinPerIp, message: "Too many join attempts from this network; try again later" },
  /** Signed join submissions per address, counted only once the signature proved the address. */
  joinPerProvenAddress: { limit: (l) => l.joinPerAddress, message: "Too many join attempts for this wallet; try again later" },
  /** Dashboard sign-in messages and signed sign-ins per client IP (each endpoint counted apart by its subject). */
  adminSignInPerIp: { limit: (l) => l.joinPerIp, message: "Too many sign-in attempts from this network; try again later" },
  /** Join page loads per client IP (each costs Redis reads). */
  pagePerIp: { limit: (l) => l.pagePerIp, message: "Too many page loads from this network; try again in a minute" },
} as const satisfies Record<string, LimitPolicy>;

/** The name of a limit in {@link LIMIT_POLICIES}. */
export type LimitName = keyof typeof LIMIT_POLICIES;

/** The answer of a limit: within it, or over it (with how long to wait and what to tell the person). */
export type LimitVerdict = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number; readonly message: string };

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

/** Sliding-window limits in Redis, by name. */
export interface RateLimiter {
  /**
   * Counts one request of `subject` against the named limit (nothing is counted when it is already reached).
   * @throws {import("../shared/errors.js").StoreUnavailableError}
   */
  hit(name: LimitName, subject: string): Promise<LimitVerdict>;
}

// SLIDING_WINDOW's answer: allowed (1 or 0), and the seconds until a place frees up.
const WindowReplySchema = v.tuple([v.picklist([0, 1]), v.pipe(v.number(), v.integer(), v.minValue(0))]);

/** A rate limiter over Redis with the configured limits. */
export function createRateLimiter(redis: Redis, keyPrefix: string, limits: Config["rateLimits"], now: () => number = Date.now): RateLimiter {
  return {
    async hit(name, subject) {
      const policy = LIMIT_POLICIES[name];
      const { limit, windowSeconds } = policy.limit(limits);
      const reply = await storeCall("rate limit", () =>
        redis.eval<string[], [number, number]>(SLIDING_WINDOW, [`${keyPrefix}:rl:${name}:${subject}`], [String(now()), String(windowSeconds), String(limit)]),
      );
      const parsed = v.safeParse(WindowReplySchema, reply);
      if (!parsed.success) throw new CorruptStateError("Unexpected reply from the rate limit script");
      const [allowed, retryAfter] = parsed.output;
      return allowed === 1 ? { allowed: true } : { allowed: false, retryAfterSeconds: Math.max(1, retryAfter ?? 1), message: policy.message };
    },
  };
}

/**
 * Counts one request against the named limit and stops the request when it is over.
 * @throws {RateLimitedError} over the limit (429 with Retry-After).
 */
export async function enforceLimit(limiter: RateLimiter, name: LimitName, subject: string): Promise<void> {
  const verdict = await limiter.hit(name, subject);
  if (!verdict.allowed) throw new RateLimitedError(verdict.message, verdict.retryAfterSeconds);
}

/**
 * What a client IP is counted as: the address itself for IPv4, its /64 for IPv6 (one subscriber usually holds a
 * whole /64, so counting single IPv6 addresses would let one client rotate through 2^64 of them).
 */
export function ipSubject(ip: string): string {
  if (!ip.includes(":")) return ip;
  const [head = "", tail = ""] = ip.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  // An IPv4-mapped tail (::ffff:1.2.3.4) is an IPv4 client.
  const last = tailGroups.at(-1) ?? headGroups.at(-1) ?? "";
  if (last.includes(".")) return last;
  const missing = ip.includes("::") ? 8 - headGroups.length - tailGroups.length : 0;
  const groups = [...headGroups, ...Array<string>(Math.max(0, missing)).fill("0"), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((g) => (g || "0").replace(/^0+(?=.)/, "").toLowerCase())
    .join(":")}::/64`;
}
