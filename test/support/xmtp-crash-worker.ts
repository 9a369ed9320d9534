// One function instance in a process of its own, with the real XMTP client, that runs one operation and
// crashes at a chosen point: killed (SIGKILL), or its Redis cut off (it goes on without it).
// argv: JSON {@link CrashWorkerArgs}. Prints JSON lines: {"step":…} for each step seen, then {"answer":…} or {"error":…}.
import { createApp } from "../../lib/app.js";
import { loadConfig, type Config } from "../../lib/config.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { silentLogger } from "../../lib/shared/log.js";
import { addMembers, removeMembers, sendMessage } from "../../lib/use-cases/operator.js";
import { createRedis } from "../../lib/shared/redis.js";
import { createNodeSdkXmtp } from "../../lib/xmtp/node-sdk-adapter.js";
import type { Address } from "../../lib/shared/address.js";
import { startCuttableProxy } from "./cuttable-proxy.js";

/** The operation the instance runs. */
export type CrashOp =
  | { readonly kind: "join" | "add" | "remove"; readonly groupId: string; readonly address: Address }
  /** Joins into different groups at once: their commits go out side by side and share checkpoints. */
  | { readonly kind: "joins"; readonly joins: readonly { readonly groupId: string; readonly address: Address }[] }
  | { readonly kind: "send"; readonly groupId: string; readonly text: string };

/** Where it crashes: the `occurrence`-th time it reaches `at` (for relay steps, on calls to `path` only). */
export interface CrashPlan {
  readonly at: string;
  readonly path?: string;
  readonly occurrence?: number;
  readonly mode: "kill" | "cut";
}

export interface CrashWorkerArgs {
  readonly env: Record<string, string>;
  readonly appVersion: string;
  readonly leaseTtlMs: number;
  readonly op: CrashOp;
  readonly crash?: CrashPlan;
  /** The control: no write-ahead relay (what the code did before saving ahead of the network). */
  readonly unsafeWithoutWriteAhead?: boolean;
}

const args = JSON.parse(process.argv[2] ?? "{}") as CrashWorkerArgs;
const print = (line: unknown) => process.stdout.write(JSON.stringify(line) + "\n");
const loaded = loadConfig(args.env);
const proxy = await startCuttableProxy(loaded.redis.url);
const config: Config = { ...loaded, redis: { ...loaded.redis, url: proxy.url }, xmtp: { ...loaded.xmtp, appVersion: args.appVersion } };
let seen = 0;
const xmtp = createNodeSdkXmtp(config.xmtp, {
  redis: createRedis(config.redis, { plainResponses: true }),
  keyPrefix: config.redis.keyPrefix,
  logger: silentLogger,
  leaseTtlMs: args.leaseTtlMs,
  ...(args.unsafeWithoutWriteAhead ? { unsafeWithoutWriteAhead: true } : {}),
  onStep: (step, detail) => {
    const plan = args.crash;
    // A relayed write's detail is its path and what it carries (V3 method names in either protocol).
    if (!plan || step !== plan.at || (plan.path && !detail?.includes(plan.path))) return;
    if (++seen !== (plan.occurrence ?? 1)) return;
    print({ step, detail });
    if (plan.mode === "kill") process.kill(process.pid, "SIGKILL");
    else proxy.cut();
  },
});
const app = createApp(config, { xmtp, logger: silentLogger });

const run = (op: CrashOp): Promise<unknown> => {
  switch (op.kind) {
    case "join":
      return decideJoin(app, { groupId: op.groupId, address: op.address }, "webhook");
    case "joins":
      return Promise.all(op.joins.map((j) => decideJoin(app, j, "webhook").catch((error: unknown) => ({ status: error instanceof Error ? error.name : "error" }))));
    case "add":
      return addMembers(app, op.groupId, [op.address]);
    case "remove":
      return removeMembers(app, op.groupId, [op.address]);
    case "send":
      return sendMessage(app, op.groupId, op.text);
  }
};
try {
  print({ answer: await run(args.op) });
} catch (error) {
  print({ error: error instanceof Error ? error.name : String(error) });
}
process.exit(0);
