import { appendFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { nodeHealth } from "../local/xmtp-node/launcher.js";
import { startLocalXmtpNode } from "../local/xmtp-node/xmtp-node.js";
import { createApp, setApp } from "../lib/app.js";
import { loadConfig } from "../lib/config.js";
import { createWalletSigner } from "../lib/xmtp/signer.js";
import { startRedisServer } from "../local/redis/redis-server.js";
import { startUpstashBridge } from "../local/redis/upstash-bridge.js";
import { startDevLinkService } from "../local/link-service/dev-link-service.js";
import { startLocalServer } from "./local-server.js";

// `npm run dev`: the functions on http://localhost:3000 with everything they need.
// - Reads .env.local / .env when present.
// - No Redis configured → starts a throwaway redis-server with an Upstash-REST bridge in front.
// - No XMTP_ENV → the real XMTP client (libxmtp) against a local XMTP node on localhost:5556 (started here
//   unless one is running), so the whole flow works offline; set XMTP_ENV=dev to use XMTP's dev network.
//   People need an inbox on that node to join: `npm run xmtp:person` makes one.
// - Groups get their own join page (/join/<id>); DEV_LINK_SERVICE=1 also starts a stand-in
//   Converse-style link service, to try the webhook path.
for (const file of [".env.local", ".env"]) if (existsSync(file)) process.loadEnvFile(file);
const env = process.env;
const port = Number(env.PORT ?? 3000);
const cleanups: (() => Promise<void>)[] = [];

if (!env.UPSTASH_REDIS_REST_URL && !env.KV_REST_API_URL) {
  const redis = await startRedisServer();
  const bridge = await startUpstashBridge(redis.url);
  cleanups.push(() => bridge.close(), () => redis.stop());
  env.UPSTASH_REDIS_REST_URL = bridge.url;
  env.UPSTASH_REDIS_REST_TOKEN = bridge.token;
  console.log(`redis: started ${redis.url} behind an Upstash REST bridge at ${bridge.url}`);
}
const offline = !env.XMTP_ENV;
if (offline) {
  // The local node serves both protocols: V3 on 5556, and d14n (gateway and node) for XMTP_NETWORK=d14n.
  const running = await nodeHealth();
  if (running) {
    console.log("xmtp: using the local XMTP node already running on localhost:5556");
    if (running.gatewayUrl) env.XMTP_GATEWAY_HOST ||= running.gatewayUrl;
  } else {
    const node = await startLocalXmtpNode({ d14n: {} });
    cleanups.push(() => node.close());
    console.log(`xmtp: started a local XMTP node on ${node.url}, d14n gateway ${node.gatewayUrl} (in memory: it forgets everything when dev stops)`);
    env.XMTP_GATEWAY_HOST ||= node.gatewayUrl!;
  }
  env.XMTP_ENV = "local";
}
if (!env.LINK_SERVICE_URL && env.DEV_LINK_SERVICE === "1") {
  const links = await startDevLinkService();
  cleanups.push(() => links.close());
  env.LINK_SERVICE_URL = `${links.url}/api/groups/create`;
  env.LINK_BASE_URL = `${links.url}/group/`;
  console.log(`link service: local stand-in at ${links.url} (POST <group url>/join {"walletAddress":"0x…"} to ask to join)`);
}
const generated: Record<string, string> = {};
const fill = (name: string, value: () => string) => {
  if (!env[name]) env[name] = generated[name] = value();
};
fill("XMTP_WALLET_KEY", () => "0x" + randomBytes(32).toString("hex"));
fill("XMTP_DB_ENCRYPTION_KEY", () => randomBytes(32).toString("hex"));
fill("ADMIN_API_KEY", () => randomBytes(24).toString("base64url"));
fill("WEBHOOK_SECRET", () => randomBytes(24).toString("base64url"));
fill("PUBLIC_URL", () => `http://localhost:${port}`);
// Generated secrets go to .env.local (git-ignored), never to the console; the next run reuses them,
// so the dev wallet (and its XMTP installation) stays the same.
if (Object.keys(generated).length > 0) {
  appendFileSync(".env.local", Object.entries(generated).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
  console.log(`wrote ${Object.keys(generated).join(", ")} to .env.local`);
}

const config = loadConfig(env);
const { address } = createWalletSigner(config.xmtp.walletKey);
setApp(createApp(config));

const server = await startLocalServer(port, "127.0.0.1");
console.log(`functions: ${server.url}/api/create, ${server.url}/api/webhook`);
console.log(`join pages: ${config.publicUrl}/join/<joinLinkId> (the joinUrl /api/create answers; open it in a browser with a wallet)`);
console.log(`xmtp: ${config.xmtp.env} network as ${address}; starts on ${config.xmtp.network}${config.xmtp.gatewayHost ? `, gateway ${config.xmtp.gatewayHost}` : ""} (XMTP_NETWORK=d14n to start on the decentralized network)`);
if (config.xmtp.env === "local") {
  console.log("people: `npm run xmtp:person` registers a throwaway wallet on the local node and prints its address and key");
  console.log("        (import the key into a browser wallet to join through a join page; --listen shows what it receives)");
}

const stop = async () => {
  await server.close();
  for (const cleanup of cleanups) await cleanup();
  process.exit(0);
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
