// A separate Node process (one "instance") incrementing a SQLite counter inside durable sessions.
// argv: JSON {url, token, prefix, dbPath, iterations, crashAt?, crashOnIteration?, leaseTtlMs?, padBytes?, maxRequestBytes?}
// Prints one JSON line per acknowledged increment: {value, version, before, baseVersion}.
import { createRedis } from "../../lib/shared/redis.js";
import { createDurableDatabase, type SessionStep } from "../../lib/xmtp/state/durable-database.js";
import { createSqliteHolder } from "./sqlite-holder.js";

const args = JSON.parse(process.argv[2] ?? "{}") as {
  url: string;
  token: string;
  prefix: string;
  dbPath: string;
  iterations: number;
  crashAt?: SessionStep;
  crashOnIteration?: number;
  leaseTtlMs?: number;
  padBytes?: number;
  maxRequestBytes?: number;
};
let iteration = 0;
const durable = createDurableDatabase({
  redis: createRedis({ url: args.url, token: args.token }, { plainResponses: true }),
  keyPrefix: args.prefix,
  dbPath: args.dbPath,
  chunkSize: 4096,
  leaseTtlMs: args.leaseTtlMs ?? 2000,
  leaseWaitMs: 60_000,
  ...(args.maxRequestBytes ? { maxRequestBytes: args.maxRequestBytes } : {}),
  onStep: (step) => {
    if (step === args.crashAt && iteration === (args.crashOnIteration ?? 0)) process.kill(process.pid, "SIGKILL");
  },
});
const holder = createSqliteHolder(args.dbPath);
for (iteration = 0; iteration < args.iterations; iteration++) {
  let seen: { before: number; baseVersion: number } | undefined;
  await durable.run(holder, async () => {
    const baseVersion = durable.localVersion ?? 0;
    const { before } = holder.increment(args.padBytes ?? 0);
    seen = { before, baseVersion };
  });
  process.stdout.write(JSON.stringify({ value: seen!.before + 1, version: durable.localVersion, ...seen }) + "\n");
}
process.exit(0);
