import { randomBytes } from "node:crypto";
import { DependencyUnavailableError } from "../../shared/errors.js";
import type { Redis } from "../../shared/redis.js";
import { storeCall } from "../../shared/redis.js";

/** A held lease: who holds it (token) and the fencing number taken when it was acquired. */
export interface Lease {
  readonly token: string;
  readonly fence: number;
  /** False once a renewal found the lease gone (expired, or taken by another holder), or renewals failed for a whole TTL. */
  readonly held: boolean;
  /** Aborted (with a {@link LeaseLostError}) as soon as a renewal finds the lease lost (not on release). */
  readonly signal: AbortSignal;
  /** Stops renewing and deletes the lease if it is still ours. Never throws. */
  release(): Promise<void>;
}

/** The waiter stopped waiting: what it wanted done was done by the holder (see {@link LeaseOptions.watch}). */
export class LeaseNotNeededError extends Error {
  override readonly name = "LeaseNotNeededError";
}

/** This holder's lease expired or was taken over: it must stop, another instance carries on (503). */
export class LeaseLostError extends DependencyUnavailableError {
  override readonly name = "LeaseLostError";
  override readonly publicMessage = "The service is busy; try again in a moment";
}

/** No lease within the wait budget: another instance is holding the XMTP installation (503). */
export class LeaseTimeoutError extends DependencyUnavailableError {
  override readonly name = "LeaseTimeoutError";
  override readonly publicMessage = "The service is busy; try again in a moment";
  constructor(waitedMs: number) {
    super(`XMTP lease not acquired within ${waitedMs} ms`);
  }
}

// SET NX PX and INCR in one step: a holder always has a fencing number newer than every earlier holder's.
// A busy lease answers the watched key's value (if any), so a waiter learns in the same round trip whether it
// still needs the lease.
// A lease already holding this caller's token is its own: the client sent this step again after its reply was
// lost. Nobody else can have moved the fence while the token holds the lease (every fence move takes the lease
// first), so the fence is still the one this caller's first copy took.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {redis.call('INCR', KEYS[2]), false}
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {tonumber(redis.call('GET', KEYS[2])), false}
end
if KEYS[3] then return {0, redis.call('GET', KEYS[3])} end
return {0, false}
`;
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Options of {@link acquireLease}. */
export interface LeaseOptions {
  readonly leaseKey: string;
  readonly fenceKey: string;
  /** How long the lease lives without renewal; renewed every third of it while held. */
  readonly ttlMs: number;
  /** How long to wait for a busy lease before giving up. */
  readonly waitMs: number;
  /**
   * While waiting, the key to read at each attempt (in the same round trip): when `until` says its value means
   * the lease is no longer needed, stop waiting with {@link LeaseNotNeededError}.
   */
  readonly watch?: { readonly key: string; readonly until: (value: string | null) => boolean };
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Acquires the lease (waiting with jittered backoff while another holder has it) and keeps it alive until released.
 * @throws {LeaseTimeoutError} when not acquired within `waitMs`.
 * @throws {LeaseNotNeededError} when the watched key said so while waiting.
 * @throws {import("../../shared/errors.js").StoreUnavailableError} when Redis cannot be reached.
 */
export async function acquireLease(redis: Redis, options: LeaseOptions): Promise<Lease> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const token = randomBytes(16).toString("hex");
  const started = Date.now();
  let backoff = 20;
  const keys = [options.leaseKey, options.fenceKey, ...(options.watch ? [options.watch.key] : [])];
  for (;;) {
    const [fence, watched] = await storeCall("acquire lease", () => redis.eval<string[], [number, string | null]>(ACQUIRE, keys, [token, String(options.ttlMs)]));
    if (Number(fence) > 0) return keepAlive(redis, options, token, Number(fence));
    if (options.watch?.until(typeof watched === "string" ? watched : null)) throw new LeaseNotNeededError("No longer needed: the holder did it");
    if (Date.now() - started >= options.waitMs) throw new LeaseTimeoutError(options.waitMs);
    await sleep(Math.min(backoff, options.waitMs - (Date.now() - started)) * (0.5 + Math.random() / 2));
    backoff = Math.min(backoff * 2, 500);
  }
}

function keepAlive(redis: Redis, options: LeaseOptions, token: string, fence: number): Lease {
  const lost = new AbortController();
  let held = true;
  let confirmedAt = Date.now();
  const lose = (why: string) => {
    if (!held) return;
    held = false;
    clearInterval(timer);
    lost.abort(new LeaseLostError(`XMTP lease lost: ${why}`));
  };
  const timer = setInterval(() => {
    const sentAt = Date.now();
    redis
      .eval<string[], number>(RENEW, [options.leaseKey], [token, String(options.ttlMs)])
      .then((renewed) => {
        if (Number(renewed) !== 1) lose("another holder has it, or it expired");
        else confirmedAt = sentAt;
      })
      // A failed renewal is not a lost lease yet, but one not renewed for a whole TTL has expired for everyone else.
      .catch(() => {
        if (Date.now() - confirmedAt >= options.ttlMs) lose("not renewed within its TTL (Redis unreachable)");
      });
  }, Math.max(10, Math.floor(options.ttlMs / 3)));
  timer.unref();
  return {
    token,
    fence,
    get held() {
      return held;
    },
    signal: lost.signal,
    async release() {
      clearInterval(timer);
      held = false;
      await redis.eval(RELEASE, [options.leaseKey], [token]).catch(() => undefined);
    },
  };
}
