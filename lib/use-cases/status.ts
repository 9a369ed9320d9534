import type { Config } from "../config.js";
import type { Redis } from "../shared/redis.js";
import { chainName } from "../shared/chains.js";
import type { ReverifyCursorStore } from "../stores/reverify-cursor.js";
import { createNetworkChoice } from "../xmtp/state/network-choice.js";

/** What the status page needs. */
export interface StatusDeps {
  readonly config: Pick<Config, "xmtp" | "eligibility" | "linkService" | "cronSecret" | "admins" | "redis">;
  readonly redis: Redis;
  readonly reverifyCursor: Pick<ReverifyCursorStore, "lastRun">;
}

/**
 * The deployment at a glance, for the dashboard: the XMTP network, the chains rules can use, the cron's last run.
 * Names and counts only: never a URL (RPC providers put keys in them), a key or a secret.
 * @throws {import("../shared/errors.js").StoreUnavailableError}
 */
export async function deploymentStatus(deps: StatusDeps) {
  const { config } = deps;
  const choice = createNetworkChoice(deps.redis, config.redis.keyPrefix);
  const [recorded, lastSwitch, lastRun] = await Promise.all([choice.read(), choice.history(), deps.reverifyCursor.lastRun()]);
  return {
    xmtp: {
      env: config.xmtp.env,
      network: recorded ?? config.xmtp.network,
      gatewayConfigured: config.xmtp.gatewayHost !== null,
      lastSwitch,
    },
    chains: [...config.eligibility.rpcUrls.keys()].sort((a, b) => a - b).map((chainId) => ({ chainId, name: chainName(chainId) })),
    eligibilityProvider: config.eligibility.provider,
    linkService: config.linkService !== null,
    admins: config.admins.length,
    cron: { configured: config.cronSecret !== null, lastRun },
  };
}
