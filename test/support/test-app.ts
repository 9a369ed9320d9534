import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { createApp, type App, type AppOverrides } from "../../lib/app.js";
import { loadConfig, type Config, type XmtpProtocol } from "../../lib/config.js";
import { silentLogger } from "../../lib/shared/log.js";
import { createRedis, type Redis } from "../../lib/shared/redis.js";
import { createNodeSdkXmtp, type XmtpStateOptions } from "../../lib/xmtp/node-sdk-adapter.js";
import { createWalletSigner } from "../../lib/xmtp/signer.js";
import { FakeXmtpNetwork } from "./fake-xmtp.js";

/** A private key for tests (anvil's well-known first account). */
export const BACKEND_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" as const;
export const ADMIN_KEY = "admin-key-for-tests-0123456789abcdef";
export const WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789";
export const LINK_SERVICE_URL = "https://links.example.test/api/groups/create";

/** A valid environment, each test run under its own Redis key prefix. */
export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  const upstash = inject("upstash");
  return {
    XMTP_WALLET_KEY: BACKEND_KEY,
    XMTP_DB_ENCRYPTION_KEY: "11".repeat(32),
    XMTP_ENV: "dev",
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: upstash.token,
    REDIS_KEY_PREFIX: `t${randomBytes(6).toString("hex")}`,
    ADMIN_API_KEY: ADMIN_KEY,
    WEBHOOK_SECRET,
    PUBLIC_URL: "https://gated.example.test",
    LINK_SERVICE_URL,
    LINK_BASE_URL: "https://links.example.test/group/",
    ...extra,
  };
}

/** A Redis client on the test bridge. */
export function testRedis(): Redis {
  const upstash = inject("upstash");
  return createRedis({ url: upstash.url, token: upstash.token });
}

export interface TestApp {
  readonly app: App;
  readonly config: Config;
  readonly network: FakeXmtpNetwork;
  readonly backendAddress: string;
}

/** The real application over the real Redis (through the bridge) with the XMTP network double. */
export function createTestApp(options: { env?: Record<string, string>; overrides?: AppOverrides } = {}): TestApp {
  const config = loadConfig(testEnv(options.env));
  const network = new FakeXmtpNetwork();
  const { address } = createWalletSigner(config.xmtp.walletKey);
  const app = createApp(config, { logger: silentLogger, xmtp: network.port(address), ...options.overrides });
  return { app, config, network, backendAddress: address };
}

/** One function instance with the real XMTP client against the local node, on a database directory of its own. */
export interface RealXmtpInstance {
  readonly app: App;
  readonly config: Config;
  readonly xmtp: ReturnType<typeof createNodeSdkXmtp>;
  readonly dir: string;
  close(): Promise<void>;
}

/** What instances of one deployment share: Redis (a key prefix), the backend wallet, and a tag for node faults. */
export interface Deployment {
  readonly env: Record<string, string>;
  /** The backend client's `x-app-version`, so faults armed on the shared node hit this deployment only. */
  readonly appVersion: string;
  readonly backendAddress: string;
  /** The protocol it starts on (and its people's clients use). */
  readonly protocol: XmtpProtocol;
}

export { PROTOCOLS } from "./xmtp-people.js";

/**
 * A deployment of its own: fresh backend wallet, fresh key prefix, the local XMTP node, no link service unless `env`
 * names one. It starts on `protocol` (default V3), with the local node's d14n gateway configured either way.
 */
export function realDeployment(env: Record<string, string> = {}, protocol: XmtpProtocol = "v3"): Deployment {
  const key = `0x${randomBytes(32).toString("hex")}` as const;
  const base = testEnv({ XMTP_ENV: "local", XMTP_WALLET_KEY: key, LINK_SERVICE_URL: "", LINK_BASE_URL: "", XMTP_GATEWAY_HOST: inject("xmtpGateway"), XMTP_NETWORK: protocol, ...env });
  return { env: base, appVersion: `test-${base.REDIS_KEY_PREFIX}/1`, backendAddress: createWalletSigner(key).address, protocol };
}

/** Starts an instance of `deployment` with an empty disk (a cold start); `state` adds test hooks to its durable state. */
export async function startRealInstance(
  deployment: Deployment,
  overrides: AppOverrides = {},
  state: Pick<XmtpStateOptions, "leaseTtlMs" | "onStep"> = {},
): Promise<RealXmtpInstance> {
  const dir = await mkdtemp(join(tmpdir(), "xmtp-instance-"));
  const loaded = loadConfig({ ...deployment.env, XMTP_DB_DIR: dir });
  const config: Config = { ...loaded, xmtp: { ...loaded.xmtp, appVersion: deployment.appVersion } };
  const xmtp = createNodeSdkXmtp(config.xmtp, {
    redis: createRedis(config.redis, { plainResponses: true }),
    keyPrefix: config.redis.keyPrefix,
    logger: silentLogger,
    ...state,
  });
  const app = createApp(config, { logger: silentLogger, xmtp, ...overrides });
  return {
    app,
    config,
    xmtp,
    dir,
    close: async () => {
      await xmtp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
