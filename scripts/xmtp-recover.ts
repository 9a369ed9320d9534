import { Client } from "@xmtp/node-sdk";
import { hexToBytes } from "viem";
import { getConfig } from "../lib/config.js";
import { CorruptStateError } from "../lib/shared/errors.js";
import { createRedis } from "../lib/shared/redis.js";
import { recoverInstallation } from "../lib/xmtp/state/recovery.js";
import { createSnapshotStore } from "../lib/xmtp/state/snapshot-store.js";
import { createNetworkChoice } from "../lib/xmtp/state/network-choice.js";
import { createWalletSigner } from "../lib/xmtp/signer.js";

// `npm run xmtp:recover -- [--status] [--force] [--allow-new-installation]`: shows the installation's state,
// recovers one marked needs-recovery, or allows the next session once to start a new installation although the
// network lists some already (see README "Recovering the XMTP installation"). Uses the same env as the deployment.
const args = new Set(process.argv.slice(2));
const config = getConfig();
const redis = createRedis(config.redis, { plainResponses: true });
const store = createSnapshotStore(redis, config.redis.keyPrefix);
// After XMTP's cutover the revoke is an identity update like any other write: it goes to the gateway.
const network = (await createNetworkChoice(redis, config.redis.keyPrefix).read()) ?? config.xmtp.network;

if (args.has("--status")) {
  const [manifest, marker, newInstallationAllowed, installation] = await Promise.all([
    store.readManifest(),
    store.readRecoveryMarker(),
    store.newInstallationAllowed(),
    store.readInstallation().catch((error: unknown) => {
      if (error instanceof CorruptStateError) return "unreadable (see README: recovering needs --force)";
      throw error;
    }),
  ]);
  console.log(
    JSON.stringify(
      {
        network,
        installation,
        version: manifest?.version ?? null,
        committedAt: manifest?.committedAt ?? null,
        bytes: manifest?.files.reduce((n, f) => n + f.size, 0) ?? 0,
        needsRecovery: marker,
        newInstallationAllowed,
      },
      null,
      2,
    ),
  );
  process.exit(0);
}

if (args.has("--allow-new-installation")) {
  await store.allowNewInstallation();
  console.log("The next session may start a new XMTP installation (once, within 24 hours). It will be in none of the existing groups until it is re-added to them.");
  process.exit(0);
}

const { signer } = createWalletSigner(config.xmtp.walletKey);
const report = await recoverInstallation(
  {
    redis,
    store,
    revoke: (inboxId, ids) =>
      Client.revokeInstallations(signer, inboxId, ids.map((id) => hexToBytes(`0x${id}`)), config.xmtp.env, network === "d14n" ? (config.xmtp.gatewayHost ?? undefined) : undefined),
  },
  { force: args.has("--force") },
);
console.log(JSON.stringify(report, null, 2));
if (report.status === "refused") process.exit(2);
if (report.status === "recovered" && !report.revoked && report.retiredInstallationId) {
  console.error(`The old installation ${report.retiredInstallationId} is not revoked yet; it will be listed among the inbox's installations until it is.`);
}
