import type { Config } from "../config.js";
import type { Redis } from "../shared/redis.js";
import { createAirstackSource } from "./airstack.js";
import { withEligibilityCache } from "./cache.js";
import { createEligibilityChecker, type EligibilityChecker } from "./evaluate.js";
import { createOnchainSource } from "./onchain.js";
import type { Rules } from "../shared/rules.js";

/** Eligibility as the use cases see it: decide joins, and validate/enrich rules at create. */
export interface EligibilityService extends EligibilityChecker {
  /**
   * Checks that every rule can be evaluated here (RPC configured, contract exists and behaves) and fills in
   * what is read once at create (token symbol and decimals, collection name).
   * @throws {import("../shared/errors.js").InvalidRequestError} naming what to fix (e.g. the RPC_URL_<chainId> to set).
   * @throws {import("./evaluate.js").EligibilitySourceError} the chain could not be read (503).
   */
  prepare(rules: Rules): Promise<Rules>;
}

/** Builds the configured provider (on-chain by default, Airstack if chosen) behind the Redis cache. */
export function createEligibilityService(
  config: Config["eligibility"],
  redis: Redis,
  keyPrefix: string,
  fetchFn?: typeof fetch,
): EligibilityService & { cacheStats: { hits: number; misses: number } } {
  const onchain = createOnchainSource({ rpcUrls: config.rpcUrls, ...(fetchFn ? { fetch: fetchFn } : {}) });
  const source =
    config.provider === "airstack" && config.airstackApiKey
      ? createAirstackSource({ apiKey: config.airstackApiKey, ...(fetchFn ? { fetch: fetchFn } : {}) })
      : onchain;
  const checker = withEligibilityCache(createEligibilityChecker(source), redis, keyPrefix, config.cacheTtlSeconds);
  return {
    check: (rules, address, scope) => checker.check(rules, address, scope),
    prepare: (rules) => source.prepare(rules),
    cacheStats: checker.stats,
  };
}
