import { parseArgs } from "node:util";
import { nodeHealth, removePidFile, stopRecordedNode, writePidFile } from "../local/xmtp-node/launcher.js";
import { LOCAL_D14N_NODE_PORT, LOCAL_GATEWAY_PORT, LOCAL_XMTP_PORT, startLocalXmtpNode } from "../local/xmtp-node/xmtp-node.js";

// `npm run xmtp:node`: the local XMTP node on localhost:5556 (what `env: "local"` clients use), in the foreground.
//   --d14n                also serve the decentralized network: a gateway (--gateway-port, default 5050) and a
//                         node (--node-port, default 5055) over the same data
//   --cutover-after-s N   retire V3 after N seconds: its writes and subscriptions are refused from then on
//   --latency-ms N        add N ms to every call (a real node is further away)
//   --lifetime-minutes N  shut down by itself after N minutes (default 120)
//   --verbose             print every call served
//   --status              print whether one is running, and exit
//   --stop                stop the one started by this command (by its PID file), and exit
const { values } = parseArgs({
  options: {
    "latency-ms": { type: "string", default: "0" },
    "lifetime-minutes": { type: "string", default: "120" },
    verbose: { type: "boolean", default: false },
    d14n: { type: "boolean", default: false },
    "gateway-port": { type: "string", default: String(LOCAL_GATEWAY_PORT) },
    "node-port": { type: "string", default: String(LOCAL_D14N_NODE_PORT) },
    "cutover-after-s": { type: "string" },
    status: { type: "boolean", default: false },
    stop: { type: "boolean", default: false },
  },
});

if (values.status) {
  const health = await nodeHealth();
  console.log(health ? `running: pid ${health.pid}, up ${Math.round(health.uptimeMs / 1000)} s, latency ${health.latencyMs} ms` : "not running");
  process.exit(health ? 0 : 1);
}
if (values.stop) {
  console.log((await stopRecordedNode()) ? "stopped" : "no node started by `npm run xmtp:node` is running");
  process.exit(0);
}

const latencyMs = Number(values["latency-ms"]);
const lifetimeMinutes = Number(values["lifetime-minutes"]);
const gatewayPort = Number(values["gateway-port"]);
const nodePort = Number(values["node-port"]);
const cutoverAfterS = values["cutover-after-s"] === undefined ? undefined : Number(values["cutover-after-s"]);
const port = (n: number) => Number.isInteger(n) && n >= 0 && n < 65536;
if (!Number.isFinite(latencyMs) || latencyMs < 0 || !Number.isFinite(lifetimeMinutes) || lifetimeMinutes <= 0 || !port(gatewayPort) || !port(nodePort) || (cutoverAfterS !== undefined && !(cutoverAfterS >= 0))) {
  console.error("--latency-ms and --cutover-after-s must be ≥ 0, --lifetime-minutes > 0, and ports 0–65535");
  process.exit(2);
}
const node = await startLocalXmtpNode({
  latencyMs,
  lifetimeMs: lifetimeMinutes * 60_000,
  ...(values.d14n ? { d14n: { gatewayPort, nodePort } } : {}),
  ...(cutoverAfterS !== undefined ? { cutoverAfterMs: cutoverAfterS * 1000 } : {}),
  ...(values.verbose ? { onCall: (c) => console.log(`${new Date(c.at).toISOString()} ${c.method} status=${c.status} ${c.ms}ms ${c.appVersion}`) } : {}),
}).catch((error: unknown) => {
  console.error(`could not listen on port ${LOCAL_XMTP_PORT}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
await writePidFile();
console.log(`local XMTP node on ${node.url} (pid ${process.pid}, latency ${latencyMs} ms, stops in ${lifetimeMinutes} min); clients use env "local"`);
if (node.gatewayUrl) console.log(`d14n: gateway ${node.gatewayUrl} (XMTP_GATEWAY_HOST), node ${node.nodeUrl}`);
if (cutoverAfterS !== undefined) console.log(`V3 retires in ${cutoverAfterS} s`);

process.once("SIGINT", () => void node.close());
process.once("SIGTERM", () => void node.close());
await node.closed;
await removePidFile();
process.exit(0);
