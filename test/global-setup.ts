import type { TestProject } from "vitest/node";
import { startRedisServer } from "./support/redis-server.js";
import { startUpstashBridge } from "./support/upstash-bridge.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    upstash: { url: string; token: string };
  }
}

/** One redis-server and one Upstash bridge for the whole run; tests isolate themselves by key prefix. */
export default async function setup(project: TestProject) {
  const server = await startRedisServer();
  const bridge = await startUpstashBridge(server.url);
  project.provide("redisUrl", server.url);
  project.provide("upstash", { url: bridge.url, token: bridge.token });
  return async () => {
    await bridge.close();
    await server.stop();
  };
}
