import type { TestProject } from "vitest/node";
import { ensureLocalXmtpNode } from "../local/xmtp-node/launcher.js";
import { startRedisServer } from "../local/redis/redis-server.js";
import { startUpstashBridge } from "../local/redis/upstash-bridge.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    upstash: { url: string; token: string };
    /** The local node's d14n gateway (XMTP_GATEWAY_HOST for tests on the decentralized network). */
    xmtpGateway: string;
  }
}

/**
 * One redis-server, one Upstash bridge and one local XMTP node (localhost:5556, where `env: "local"` clients go)
 * for the whole run; tests isolate themselves by key prefix, random wallets and their own group ids.
 * A node already running on the port (`npm run xmtp:node`) is used and left running.
 */
export default async function setup(project: TestProject) {
  const [server, xmtpNode] = await Promise.all([startRedisServer(), ensureLocalXmtpNode({ lifetimeMinutes: 30 })]);
  const bridge = await startUpstashBridge(server.url);
  project.provide("redisUrl", server.url);
  project.provide("upstash", { url: bridge.url, token: bridge.token });
  project.provide("xmtpGateway", xmtpNode.gatewayUrl);
  return async () => {
    await bridge.close();
    await server.stop();
    await xmtpNode.stop();
  };
}
