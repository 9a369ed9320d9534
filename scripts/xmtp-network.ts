import { getConfig } from "../lib/config.js";
import { createRedis } from "../lib/shared/redis.js";
import { createNetworkChoice } from "../lib/xmtp/state/network-choice.js";

// `npm run xmtp:network -- [status | d14n | v3 --force]`: which of XMTP's protocols the installation runs on, and
// the operator's switch (see README "Running on XMTP's decentralized network"). Uses the same env as the deployment.
//   status  the protocol every instance uses now, and when and why it last changed (the default)
//   d14n    move to the decentralized network now (needs XMTP_GATEWAY_HOST); every instance follows at its next session
//   v3      back to V3: only before XMTP's cutover, and only with --force (writes made on d14n meanwhile are not on V3)
const [command = "status", ...rest] = process.argv.slice(2);
const config = getConfig();
const choice = createNetworkChoice(createRedis(config.redis), config.redis.keyPrefix);

if (command === "status") {
  const [recorded, switched] = await Promise.all([choice.read(), choice.history()]);
  console.log(JSON.stringify({ network: recorded ?? config.xmtp.network, recorded, configuredStart: config.xmtp.network, gatewayConfigured: config.xmtp.gatewayHost !== null, lastSwitch: switched }, null, 2));
  process.exit(0);
}
if (command === "d14n") {
  if (!config.xmtp.gatewayHost) {
    console.error("XMTP_GATEWAY_HOST is not set: the decentralized network is reached through this app's gateway service (see README).");
    process.exit(2);
  }
  await choice.write("d14n", "operator command");
  console.log("Every instance now uses XMTP's decentralized network from its next session on.");
  process.exit(0);
}
if (command === "v3") {
  if (!rest.includes("--force")) {
    console.error("Going back to V3 is only possible before XMTP's cutover, and what was written on d14n meanwhile is not on V3. Re-run with --force if you are sure.");
    process.exit(2);
  }
  await choice.write("v3", "operator command (--force)");
  console.log("Every instance now uses XMTP V3 from its next session on.");
  process.exit(0);
}
console.error("usage: npm run xmtp:network -- [status | d14n | v3 --force]");
process.exit(2);
