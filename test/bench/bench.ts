import { randomBytes, randomInt } from "node:crypto";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { deserialize, serialize } from "node:v8";
import { Redis as IORedis } from "ioredis";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { createRedis } from "../../lib/shared/redis.js";
import { createDurableDatabase, LEASE_TTL_MS, type DatabaseHolder } from "../../lib/xmtp/state/durable-database.js";
import { acquireLease } from "../../lib/xmtp/state/lease.js";
import { createEligibilityService } from "../../lib/eligibility/service.js";
import { POAP_CONTRACT } from "../../lib/eligibility/onchain.js";
import { startLocalChain } from "../support/evm.js";
import { startRedisServer } from "../../local/redis/redis-server.js";
import { runWorker } from "../support/spawn-worker.js";
import { startUpstashBridge } from "../../local/redis/upstash-bridge.js";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createApp } from "../../lib/app.js";
import { loadConfig, type XmtpProtocol } from "../../lib/config.js";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { issueChallenge, joinWithSignature, loadJoinPage } from "../../lib/use-cases/sign-in-join.js";
import { renderJoinPage } from "../../lib/http/join-page-html.js";
import { createSignatureVerifier } from "../../lib/services/signature-verifier.js";
import { silentLogger } from "../../lib/shared/log.js";
import { createWalletSigner } from "../../lib/xmtp/signer.js";
import { FakeXmtpNetwork } from "../support/fake-xmtp.js";
import { createPerson, PROTOCOLS } from "../support/xmtp-people.js";
import { ensureLocalXmtpNode, nodeHealth, nodeRequest } from "../../local/xmtp-node/launcher.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { addMembers, sendMessage } from "../../lib/use-cases/operator.js";
import { createNodeSdkXmtp } from "../../lib/xmtp/node-sdk-adapter.js";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { encodeAbiParameters, keccak256 } from "viem";
import { DEFAULT_REVERIFY_LIMITS, reverifyMembers } from "../../lib/use-cases/reverify.js";

// `npm run bench [-- <section,…>]`: figures against a local redis-server through the Upstash REST bridge.
// Sections: durable (the XMTP database in Redis), lease, processes, eligibility, join, xmtp (the real client),
// launch (crowds joining at once), scale (many groups at once), size (writes as the database grows), reverify (one cron
// run over groups of synthetic members, and what 1,000 groups × 250 members a day needs), linked (a join
// by a person with 1 vs 10 wallets linked to their inbox); the real-client ones on XMTP V3 and on the decentralized
// network (d14n).
// The durable "database" is a file of random 4 KiB pages (SQLCipher pages are encrypted, so incompressible).
const only = process.argv[2]?.split(",");
const want = (section: string) => !only || only.includes(section);
const PAGE = 4096;
const server = await startRedisServer();
const bridge = await startUpstashBridge(server.url);
const upstash = { url: bridge.url, token: bridge.token };
const redis = createRedis(upstash, { plainResponses: true });
const noHandle: DatabaseHolder = { release: async () => {}, discard: async () => {} };
const ms = (t: number) => `${t.toFixed(0)} ms`;
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(2)} MB`;
const time = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
};
const instance = async (prefix: string) => {
  const dbPath = join(await mkdtemp(join(tmpdir(), "bench-")), "x.db3");
  return { dbPath, durable: createDurableDatabase({ redis, keyPrefix: prefix, dbPath, persistBudgetMs: 120_000 }) };
};
const changePages = async (path: string, pages: number, totalPages: number) => {
  const fh = await open(path, "r+");
  for (let i = 0; i < pages; i++) await fh.write(randomBytes(PAGE), 0, PAGE, randomInt(totalPages) * PAGE);
  await fh.close();
};

const rows: string[][] = [];
for (const sizeMb of want("durable") ? [1, 20, 100] : []) {
  const prefix = `bench${sizeMb}-${Date.now()}`;
  const totalPages = (sizeMb * 1024 * 1024) / PAGE;
  const a = await instance(prefix);
  // First commit: the whole file goes up (the baseline a non-chunked design pays on every persist).
  const [fullMs] = await time(() => a.durable.run(noHandle, () => writeFile(a.dbPath, randomBytes(sizeMb * 1024 * 1024))));
  const fullBytes = a.durable.store.stats.bytesUploaded;

  const b = await instance(prefix);
  const [coldMs] = await time(() => b.durable.run(noHandle, async () => {}));
  const coldBytes = b.durable.store.stats.bytesDownloaded;
  await b.durable.run(noHandle, async () => {});
  const warmBytes = b.durable.store.stats.bytesDownloaded - coldBytes;

  for (const [label, pages] of [
    ["1 page", 1],
    ["1 % of pages", Math.ceil(totalPages / 100)],
    ["10 % of pages", Math.ceil(totalPages / 10)],
  ] as const) {
    const up0 = b.durable.store.stats.bytesUploaded;
    const [persistMs] = await time(() => b.durable.run(noHandle, () => changePages(b.dbPath, pages, totalPages)));
    const up = b.durable.store.stats.bytesUploaded - up0;
    rows.push([`${sizeMb} MB`, `persist after ${label}`, ms(persistMs), mb(up), `${((up / fullBytes) * 100).toFixed(1)} % of whole-file upload (${ms(fullMs)})`]);
  }
  // The instance that fell behind fetches only what changed.
  const d0 = a.durable.store.stats.bytesDownloaded;
  const [staleMs] = await time(() => a.durable.run(noHandle, async () => {}));
  rows.push([`${sizeMb} MB`, "whole-file upload (first commit)", ms(fullMs), mb(fullBytes), ""]);
  rows.push([`${sizeMb} MB`, "cold restore", ms(coldMs), mb(coldBytes), ""]);
  rows.push([`${sizeMb} MB`, "warm start", "", mb(warmBytes), "downloaded"]);
  rows.push([`${sizeMb} MB`, "stale by 3 versions, catch up", ms(staleMs), mb(a.durable.store.stats.bytesDownloaded - d0), "downloaded"]);
  await rm(a.dbPath, { force: true });
  await rm(b.dbPath, { force: true });
  await redis.flushdb();
}

// Lease round trips.
if (want("lease")) {
  const latencies: number[] = [];
  for (let i = 0; i < 200; i++) {
    const [t, lease] = await time(() => acquireLease(redis, { leaseKey: "bench:lease", fenceKey: "bench:fence", ttlMs: 5000, waitMs: 1000 }));
    const [r] = await time(() => lease.release());
    latencies.push(t + r);
  }
  latencies.sort((x, y) => x - y);
  rows.push(["-", "lease acquire+release", `p50 ${latencies[100]!.toFixed(2)} ms, p95 ${latencies[190]!.toFixed(2)} ms`, "", "200 rounds"]);
}

// Back-to-back sessions from 4 processes (real SQLite counter, each process its own directory).
if (want("processes")) {
  const prefix = `benchp-${Date.now()}`;
  const perProcess = 25;
  const [wallMs, results] = await time(() =>
    Promise.all(
      Array.from({ length: 4 }, async () =>
        runWorker({ ...upstash, prefix, dbPath: join(await mkdtemp(join(tmpdir(), "benchp-")), "x.db3"), iterations: perProcess, leaseTtlMs: 5000 }),
      ),
    ),
  );
  const sessions = results.reduce((n, r) => n + r.acks.length, 0);
  rows.push(["-", "4 processes, back-to-back sessions", `${((sessions / wallMs) * 1000).toFixed(1)} sessions/s`, "", `${sessions} sessions in ${ms(wallMs)} (incl. process start)`]);
}

// Eligibility: a 5-leaf rule against a real local EVM (anvil), with and without the Redis cache.
if (want("eligibility")) {
  const chain = await startLocalChain(100);
  const usdc = await chain.deploy("TestERC20", ["USD Coin", "USDC", 6]);
  const dai = await chain.deploy("TestERC20", ["Dai", "DAI", 18]);
  const nft = await chain.deploy("TestERC721", ["Cool Cats"]);
  const multi = await chain.deploy("TestERC1155");
  await chain.placeAt(POAP_CONTRACT, "TestPoap");
  let rpcRequests = 0;
  const counting: typeof fetch = (input, init) => {
    rpcRequests++;
    return fetch(input, init);
  };
  const config = { provider: "onchain" as const, rpcUrls: new Map([[100, chain.url]]), airstackApiKey: null };
  const uncached = createEligibilityService({ ...config, cacheTtlSeconds: 0 }, redis, "benchelig", counting);
  const cached = createEligibilityService({ ...config, cacheTtlSeconds: 60 }, redis, "benchelig", counting);
  const lower = (a: string) => a.toLowerCase() as `0x${string}`;
  const rules = await uncached.prepare({
    all: [
      { type: "erc20", chainId: 100, token: lower(usdc), minBalance: "1" },
      { type: "erc20", chainId: 100, token: lower(dai), minBalance: "1" },
      { type: "erc721", chainId: 100, contract: lower(nft), minCount: 1 },
      { type: "erc1155", chainId: 100, contract: lower(multi), tokenId: "1", minBalance: "1" },
      { type: "poap", eventId: 7 },
    ],
  });
  const wallets = Array.from({ length: 50 }, (_, i) => lower(`0x${(i + 1).toString(16).padStart(40, "0")}`));
  const measure = async (service: typeof cached) => {
    const t: number[] = [];
    for (const w of wallets) t.push((await time(() => service.check(rules, w, "group")))[0]);
    return t.sort((x, y) => x - y);
  };
  const r0 = rpcRequests;
  const cold = await measure(uncached);
  const perDecision = (rpcRequests - r0) / wallets.length;
  await measure(cached); // fill
  const r1 = rpcRequests;
  const warm = await measure(cached);
  const pct = (t: number[], p: number) => t[Math.floor((t.length - 1) * p)]!.toFixed(2);
  rows.push(["-", "eligibility, 5 leaves, no cache", `p50 ${pct(cold, 0.5)} ms, p95 ${pct(cold, 0.95)} ms`, "", `${perDecision} JSON-RPC HTTP requests per decision`]);
  rows.push(["-", "eligibility, 5 leaves, cached", `p50 ${pct(warm, 0.5)} ms, p95 ${pct(warm, 0.95)} ms`, "", `${(rpcRequests - r1) / wallets.length} JSON-RPC requests per decision`]);
  await chain.stop();
}

// The join page: page render, challenge, and sign-in + decision (XMTP double, so Redis and crypto are what is measured).
if (want("join")) {
  const chain = await startLocalChain(31337);
  const backendKey = generatePrivateKey();
  const config = loadConfig({
    XMTP_WALLET_KEY: backendKey,
    XMTP_DB_ENCRYPTION_KEY: "22".repeat(32),
    XMTP_ENV: "dev",
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: upstash.token,
    REDIS_KEY_PREFIX: `benchjoin${Date.now()}`,
    ADMIN_API_KEY: "a".repeat(32),
    WEBHOOK_SECRET: "w".repeat(32),
    PUBLIC_URL: "https://gated.example.com",
    JOIN_RATE_LIMIT_PER_IP: "100000/60",
    JOIN_RATE_LIMIT_PER_ADDRESS: "100000/60",
    JOIN_PAGE_RATE_LIMIT_PER_IP: "100000/60",
    RPC_URL_31337: chain.url,
  });
  const network = new FakeXmtpNetwork({ autoRegister: true });
  const app = createApp(config, { xmtp: network.port(createWalletSigner(backendKey).address), logger: silentLogger });
  const group = await createGroup(app, { name: "Bench", description: "", rules: { type: "open" } });
  const n = 100;
  const pages: number[] = [];
  const challenges: number[] = [];
  const joins: number[] = [];
  let joinRequests = 0;
  for (let i = 0; i < n; i++) {
    pages.push((await time(async () => renderJoinPage(await loadJoinPage(app, group.joinLinkId, "203.0.113.1"))))[0]);
    const person = privateKeyToAccount(generatePrivateKey());
    const [tc, issued] = await time(() => issueChallenge(app, { linkId: group.joinLinkId, address: person.address.toLowerCase() as `0x${string}`, chainId: 1 }, "203.0.113.1"));
    challenges.push(tc);
    const signature = await person.signMessage({ message: issued.message });
    const r0 = bridge.stats.requests;
    const [tj, result] = await time(() => joinWithSignature(app, { message: issued.message, signature }, "203.0.113.1"));
    joinRequests += bridge.stats.requests - r0;
    if (result.status !== "SUCCESS") throw new Error("bench join failed");
    joins.push(tj);
  }
  const owner = privateKeyToAccount(generatePrivateKey());
  const scw = await chain.deploy("OwnedWallet", [owner.address]);
  const verifier = createSignatureVerifier({ rpcUrls: config.eligibility.rpcUrls });
  const contract: number[] = [];
  for (let i = 0; i < 50; i++) {
    const message = `bench ${i}`;
    const signature = await owner.signMessage({ message });
    const [t, check] = await time(() => verifier.verify({ address: scw.toLowerCase() as `0x${string}`, message, signature, chainId: 31337, contractChains: "any" }));
    if (!check.valid) throw new Error("bench EIP-1271 check failed");
    contract.push(t);
  }
  const sorted = (t: number[]) => [...t].sort((x, y) => x - y);
  const pct = (t: number[], p: number) => sorted(t)[Math.floor((t.length - 1) * p)]!.toFixed(2);
  const line = (name: string, t: number[], note: string) => rows.push(["-", name, `p50 ${pct(t, 0.5)} ms, p95 ${pct(t, 0.95)} ms`, "", note]);
  line("join page: load + render", pages, "1 Redis script + 1 GET");
  line("join page: challenge", challenges, "2 rate-limit scripts, link lookup, 1 SET");
  line("join page: sign-in + join (EOA)", joins, `${(joinRequests / n).toFixed(1)} Upstash REST requests per join; signature checked offline`);
  line("join page: EIP-1271 check on anvil", contract, "eth_getCode + one eth_call (ERC-6492 validator)");
  await chain.stop();
}

/**
 * Runs a section against the local XMTP node with `latencyMs` added to every call; afterwards the node's latency is
 * what it was, the section's database directories are gone and a node started here is stopped.
 */
async function onLocalNode(latencyMs: number, section: (dirs: string[], gatewayUrl: string, nodeStartedHere: boolean) => Promise<void>): Promise<void> {
  const node = await ensureLocalXmtpNode();
  const latencyBefore = (await nodeHealth())?.latencyMs ?? 0;
  await nodeRequest("/control", { body: { latencyMs } });
  const dirs: string[] = [];
  try {
    await section(dirs, node.gatewayUrl, node.started);
  } finally {
    await nodeRequest("/control", { body: { latencyMs: latencyBefore } });
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    await node.stop();
  }
}

/**
 * One deployment against the local XMTP node and the bench's Redis (under `keyPrefix`): each call starts an instance
 * with a database directory of its own (listed in `dirs` for removal).
 */
function localDeployment(
  dirs: string[],
  keyPrefix: string,
  options: { writeAhead?: boolean; releaseBetweenSessions?: boolean; protocol: XmtpProtocol; gatewayUrl: string; sameWallet?: { walletKey: string }; env?: Record<string, string> },
) {
  const walletKey = options.sameWallet?.walletKey ?? generatePrivateKey();
  const env = {
    XMTP_NETWORK: options.protocol,
    XMTP_GATEWAY_HOST: options.gatewayUrl,
    XMTP_WALLET_KEY: walletKey,
    XMTP_DB_ENCRYPTION_KEY: "33".repeat(32),
    XMTP_ENV: "local",
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: upstash.token,
    REDIS_KEY_PREFIX: keyPrefix,
    ADMIN_API_KEY: "a".repeat(32),
    WEBHOOK_SECRET: "w".repeat(32),
    PUBLIC_URL: "https://gated.example.com",
    WEBHOOK_RATE_LIMIT_PER_WALLET: "100000/60",
    WEBHOOK_RATE_LIMIT_PER_GROUP: "100000/60",
    ...options.env,
  };
  return Object.assign(async () => {
    const dir = await mkdtemp(join(tmpdir(), "bench-xmtp-"));
    dirs.push(dir);
    const config = loadConfig({ ...env, XMTP_DB_DIR: dir });
    const xmtp = createNodeSdkXmtp(config.xmtp, {
      redis: createRedis(config.redis, { plainResponses: true }),
      keyPrefix: config.redis.keyPrefix,
      logger: silentLogger,
      ...(options.writeAhead === false ? { unsafeWithoutWriteAhead: true } : {}),
      ...(options.releaseBetweenSessions || process.env.BENCH_RELEASE_BETWEEN_SESSIONS === "1" ? { releaseBetweenSessions: true } : {}),
    });
    return { app: createApp(config, { xmtp, logger: silentLogger }), xmtp };
  }, { walletKey });
}

// The real XMTP client (libxmtp 1.9.1) against the local XMTP node with 40 ms added to every call, as a
// remote node would be: whole use cases, each inside its durable session (lease, restore, persist to Redis).
for (const protocol of want("xmtp") ? PROTOCOLS : []) {
  await onLocalNode(40, async (dirs, gatewayUrl) => {
    const personOn = { protocol, gatewayHost: gatewayUrl };
    const sorted = (t: number[]) => [...t].sort((x, y) => x - y);
    const p50 = (t: number[]) => sorted(t)[Math.floor((t.length - 1) * 0.5)]!;
    const pct = (t: number[], p: number) => sorted(t)[Math.floor((t.length - 1) * p)]!.toFixed(0);
    const calls = async () => Object.values((await nodeRequest<{ calls: Record<string, number> }>("/stats")).calls).reduce((n, c) => n + c, 0);

    /** Whole use cases on one deployment of their own, with or without saving ahead of the network's writes. */
    const measure = async (writeAhead: boolean) => {
      const label = writeAhead ? `real XMTP ${protocol} @40 ms` : `real XMTP ${protocol} @40 ms, no write-ahead (unsafe baseline)`;
      const line = (name: string, t: number[], note: string) => rows.push(["-", `${label}: ${name}`, `p50 ${pct(t, 0.5)} ms, p95 ${pct(t, 0.95)} ms`, "", note]);
      const startInstance = localDeployment(dirs, `benchxmtp${Date.now()}${writeAhead ? "w" : "u"}`, { writeAhead, protocol, gatewayUrl });
      const a = await startInstance();
      const people = await Promise.all(Array.from({ length: 10 }, () => createPerson(personOn)));
      await a.app.xmtp.withSession(async () => undefined); // the backend's inbox registered once, outside the figures

      const creates: number[] = [];
      let groupId = "";
      let c0 = await calls();
      for (let i = 0; i < 3; i++) {
        const [t, group] = await time(() => createGroup(a.app, { name: `Bench ${i}`, description: "", rules: { type: "open" } }));
        creates.push(t);
        groupId = group.groupId;
      }
      line("create group", creates, `${(((await calls()) - c0) / 3).toFixed(1)} node calls each`);

      const joins: number[] = [];
      c0 = await calls();
      const joinStart = performance.now();
      for (const p of people) {
        const [t, decision] = await time(() => decideJoin(a.app, { groupId, address: p.address }, "webhook"));
        if (decision.status !== "SUCCESS") throw new Error(`bench join failed: ${JSON.stringify(decision)}`);
        joins.push(t);
      }
      const joinWall = performance.now() - joinStart;
      line("join (webhook decision)", joins, `${(((await calls()) - c0) / people.length).toFixed(1)} node calls each; ${((people.length / joinWall) * 1000).toFixed(2)} joins/s sequential`);

      const sends: number[] = [];
      c0 = await calls();
      for (let i = 0; i < 10; i++) sends.push((await time(() => sendMessage(a.app, groupId, `bench ${i}`)))[0]);
      line("operator send", sends, `${(((await calls()) - c0) / 10).toFixed(1)} node calls each`);

      const manifest = await a.xmtp.durable.store.readManifest();
      const size = manifest?.files.reduce((n, f) => n + f.size, 0) ?? 0;
      const colds: number[] = [];
      for (let i = 0; i < 3; i++) {
        const cold = await startInstance();
        colds.push((await time(() => sendMessage(cold.app, groupId, `cold ${i}`)))[0]);
        await cold.xmtp.close();
      }
      line("cold start (restore + client + send)", colds, `database ${mb(size)}`);
      for (const p of people) await p.close();
      await a.xmtp.close();
      return { creates, joins, sends, colds };
    };

    const unsafe = await measure(false);
    const safe = await measure(true);
    const ratio = (name: string, s: number[], u: number[]) =>
      rows.push(["-", `write-ahead cost ${protocol}: ${name}`, `${(p50(s) / p50(u)).toFixed(2)}×`, "", `p50 ${p50(s).toFixed(0)} ms vs ${p50(u).toFixed(0)} ms without (goal ≤ 1.3× per commit)`]);
    ratio("join (one commit)", safe.joins, unsafe.joins);
    ratio("create (one commit)", safe.creates, unsafe.creates);
    ratio("operator send (one message)", safe.sends, unsafe.sends);
  });
}

// Launch day: crowds joining at once over two instances, the real client against the local node with 40 ms per
// call; admissions are queued in Redis and served in shared commits by whichever instance holds the lease.
for (const protocol of want("launch") ? PROTOCOLS : []) {
  await onLocalNode(0, async (dirs, gatewayUrl) => {
    const people: Awaited<ReturnType<typeof createPerson>>[] = [];
    const launch = `launch ${protocol} @40 ms`;
    try {
      const startInstance = localDeployment(dirs, `benchlaunch${Date.now()}`, { protocol, gatewayUrl });
      const [a, b] = [await startInstance(), await startInstance()];
      // The crowd registers first, at full speed (that is not what is measured).
      for (let i = 0; i < 250; i += 25) people.push(...(await Promise.all(Array.from({ length: 25 }, () => createPerson({ protocol, gatewayHost: gatewayUrl })))));
      await a.app.xmtp.withSession(async () => undefined);
      await b.app.xmtp.withSession(async () => undefined);
      await nodeRequest("/control", { body: { latencyMs: 40 } });
      const commitsOf = async (groupId: string) => (await nodeRequest<{ group: { commits: number } }>(`/stats?group=${groupId}`)).group.commits;
      const crowdJoin = async (groupId: string, crowd: typeof people) => {
        const started = performance.now();
        const answers = await Promise.all(
          crowd.map(async (p, i) => {
            const t0 = performance.now();
            const answer = await decideJoin((i % 2 ? a : b).app, { groupId, address: p.address }, "webhook").catch((e: unknown) => ({ status: `error ${(e as Error).name}` }));
            return { answer, ms: performance.now() - t0 };
          }),
        );
        return { answers, wallMs: performance.now() - started };
      };

      // Sequential: one join after another (what each join costs alone).
      const g1 = (await createGroup(a.app, { name: "Sequential", description: "", rules: { type: "open" } })).groupId;
      const seqStart = performance.now();
      for (const p of people.slice(0, 5)) await decideJoin(a.app, { groupId: g1, address: p.address }, "webhook");
      const sequentialRate = 5 / ((performance.now() - seqStart) / 1000);
      rows.push(["-", `${launch}: 5 joins one after another`, `${sequentialRate.toFixed(2)} joins/s`, "", "the baseline of the row below"]);

      // 100 at once over two instances.
      const g2 = (await createGroup(a.app, { name: "Hundred", description: "", rules: { type: "open" } })).groupId;
      const c2 = await commitsOf(g2);
      const hundred = await crowdJoin(g2, people.slice(0, 100));
      const ok2 = hundred.answers.filter((x) => x.answer.status === "SUCCESS").length;
      const slowest2 = Math.max(...hundred.answers.map((x) => x.ms));
      const rate2 = 100 / (hundred.wallMs / 1000);
      const memberView = await people[0]!.memberInboxIds(g2);
      const ownViews = await Promise.all(people.slice(0, 100).map(async (p) => (await p.group(g2)) !== null));
      rows.push([
        "-",
        `${launch}: 100 joins at once, 2 instances`,
        `${rate2.toFixed(1)} joins/s (${(rate2 / sequentialRate).toFixed(1)}× sequential)`,
        "",
        `${ok2}/100 SUCCESS; slowest ${(slowest2 / 1000).toFixed(2)} s; ${(await commitsOf(g2)) - c2} commits; a member sees ${memberView.length - 1} + backend; ${ownViews.filter(Boolean).length}/100 see the group themselves`,
      ]);

      // 250 at once for a new group: it fills.
      const g3 = (await createGroup(b.app, { name: "Full house", description: "", rules: { type: "open" } })).groupId;
      const full = await crowdJoin(g3, people);
      const ok3 = full.answers.filter((x) => x.answer.status === "SUCCESS").length;
      const denied3 = full.answers.filter((x) => x.answer.status === "DENIED" && (x.answer as { reason?: string }).reason === "This group is full").length;
      const slowest3 = Math.max(...full.answers.map((x) => x.ms));
      const onXmtp = await a.app.xmtp.withSession(async (s) => (await s.listMembers(g3)).length);
      const recorded = await a.app.members.count(g3);
      rows.push([
        "-",
        `${launch}: 250 joins at once for a new group`,
        `all answered in ${(slowest3 / 1000).toFixed(1)} s`,
        "",
        `${ok3} SUCCESS, ${denied3} DENIED full, ${250 - ok3 - denied3} other; ${onXmtp} members on XMTP (backend included), ${recorded} member records`,
      ]);

      // The operator adds 50 at once.
      const g4 = (await createGroup(a.app, { name: "Operator", description: "", rules: { type: "open" } })).groupId;
      const c4 = await commitsOf(g4);
      const [addMs, added] = await time(() => addMembers(a.app, g4, people.slice(0, 50).map((p) => p.address)));
      rows.push([
        "-",
        `${launch}: operator add of 50`,
        ms(addMs),
        "",
        `${added.results.filter((r) => r.result === "added").length} added in ${(await commitsOf(g4)) - c4} commit(s)`,
      ]);
      await a.xmtp.close();
      await b.xmtp.close();
    } finally {
      for (const p of people) await p.close();
    }
  });
}

// Many groups: the same crowd joining one group, then spread over 30 groups (4 each), over two instances, the real
// client against the local node with 40 ms per call; then a holder that died with the lease: how long until any
// group takes work again.
for (const protocol of want("scale") ? PROTOCOLS : []) {
  await onLocalNode(0, async (dirs, gatewayUrl) => {
    const people: Awaited<ReturnType<typeof createPerson>>[] = [];
    const label = `scale ${protocol} @40 ms`;
    try {
      const keyPrefix = `benchscale${Date.now()}`;
      const startInstance = localDeployment(dirs, keyPrefix, { protocol, gatewayUrl });
      const [a, b] = [await startInstance(), await startInstance()];
      for (let i = 0; i < 240; i += 30) people.push(...(await Promise.all(Array.from({ length: 30 }, () => createPerson({ protocol, gatewayHost: gatewayUrl })))));
      const one = (await createGroup(a.app, { name: "One", description: "", rules: { type: "open" } })).groupId;
      const many: string[] = [];
      for (let i = 0; i < 30; i++) many.push((await createGroup(b.app, { name: `Team ${i}`, description: "", rules: { type: "open" } })).groupId);
      await nodeRequest("/control", { body: { latencyMs: 40 } });
      const crowd = async (pairs: [string, (typeof people)[number]][]) => {
        const started = performance.now();
        const answers = await Promise.all(
          pairs.map(async ([groupId, p], i) => {
            const t0 = performance.now();
            const answer = await decideJoin((i % 2 ? a : b).app, { groupId, address: p.address }, "webhook").catch((e: unknown) => ({ status: `error ${(e as Error).name}` }));
            return { ok: answer.status === "SUCCESS", ms: performance.now() - t0 };
          }),
        );
        const times = answers.map((x) => x.ms).sort((x, y) => x - y);
        return { rate: pairs.length / ((performance.now() - started) / 1000), ok: answers.filter((x) => x.ok).length, median: times[Math.floor(times.length / 2)]!, slowest: times.at(-1)! };
      };
      const single = await crowd(people.slice(0, 120).map((p) => [one, p]));
      rows.push(["-", `${label}: 120 joins into 1 group, 2 instances`, `${single.rate.toFixed(1)} joins/s`, "", `${single.ok}/120 SUCCESS; median ${(single.median / 1000).toFixed(2)} s, slowest ${(single.slowest / 1000).toFixed(2)} s`]);
      const spreadPeople = people.slice(120, 240);
      const spread = await crowd(spreadPeople.map((p, i) => [many[i % 30]!, p]));
      await nodeRequest("/control", { body: { latencyMs: 0 } });
      const seen = await Promise.all(spreadPeople.map(async (p, i) => (await p.group(many[i % 30]!)) !== null));
      rows.push([
        "-",
        `${label}: 120 joins over 30 groups (4 each), 2 instances`,
        `${spread.rate.toFixed(1)} joins/s (${(spread.rate / single.rate).toFixed(2)}× one group)`,
        "",
        `${spread.ok}/120 SUCCESS; median ${(spread.median / 1000).toFixed(2)} s, slowest ${(spread.slowest / 1000).toFixed(2)} s; ${seen.filter(Boolean).length}/120 see their group themselves (goal ≥ 0.8×, slowest ≤ 10 s)`,
      ]);
      // Fairness: 100 groups waiting at once, one join each (their first in line is served oldest first).
      const hundredGroups: string[] = [];
      await nodeRequest("/control", { body: { latencyMs: 0 } });
      for (let i = 0; i < 100; i++) hundredGroups.push((await createGroup(a.app, { name: `Fair ${i}`, description: "", rules: { type: "open" } })).groupId);
      await nodeRequest("/control", { body: { latencyMs: 40 } });
      const fair = await crowd(people.slice(0, 100).map((p, i) => [hundredGroups[i]!, p]));
      rows.push([
        "-",
        `${label}: 100 groups waiting, one join each, 2 instances`,
        `slowest ${(fair.slowest / 1000).toFixed(2)} s`,
        "",
        `${fair.ok}/100 SUCCESS; median ${(fair.median / 1000).toFixed(2)} s; ${fair.rate.toFixed(1)} joins/s (goal: none waits longer than a session's budget, 50 s, plus one commit round)`,
      ]);
      // A holder that died mid-commit leaves the lease behind until it expires: then any group takes work again.
      await nodeRequest("/control", { body: { latencyMs: 40 } });
      const late = people.slice(100, 102);
      await redis.set(`${keyPrefix}:xmtpdb:lease`, "a-holder-that-died", { px: LEASE_TTL_MS });
      const t0 = performance.now();
      const after = await decideJoin(a.app, { groupId: many[7]!, address: late[0]!.address }, "webhook");
      const recovered = performance.now() - t0;
      rows.push(["-", `${label}: a group's next join after its holder died`, `${(recovered / 1000).toFixed(2)} s`, "", `${after.status}; lease TTL ${LEASE_TTL_MS / 1000} s (goal ≤ 5 s for every group)`]);
      await a.xmtp.close();
      await b.xmtp.close();
    } finally {
      for (const p of people) await p.close();
    }
  });
}

// Linked wallets: a join (webhook decision, the real client, 40 ms per node call) by a person whose inbox holds 1 or
// 10 wallets, the tokens on the last one (anvil): what reading the inbox's wallets and every wallet's balance costs.
for (const protocol of want("linked") ? PROTOCOLS : []) {
  await onLocalNode(40, async (dirs, gatewayUrl) => {
    const chain = await startLocalChain(100);
    const token = (await chain.deploy("TestERC20", ["Gate", "GATE", 18])).toLowerCase() as `0x${string}`;
    const people: Awaited<ReturnType<typeof createPerson>>[] = [];
    try {
      const startInstance = localDeployment(dirs, `benchlinked${Date.now()}`, { protocol, gatewayUrl, env: { RPC_URL_100: chain.url, ELIGIBILITY_CACHE_TTL_SECONDS: "0" } });
      const a = await startInstance();
      await a.app.xmtp.withSession(async () => undefined);
      const { groupId } = await createGroup(a.app, { name: "Linked", description: "", rules: { type: "erc20", chainId: 100, token, minBalance: "1" } });
      const sorted = (t: number[]) => [...t].sort((x, y) => x - y);
      const pct = (t: number[], p: number) => sorted(t)[Math.floor((t.length - 1) * p)]!.toFixed(0);
      for (const count of [1, 10]) {
        const joins: number[] = [];
        const reads: number[] = [];
        for (let i = 0; i < 5; i++) {
          const person = await createPerson({ protocol, gatewayHost: gatewayUrl });
          people.push(person);
          let last = person.address;
          for (let w = 1; w < count; w++) {
            const linked = createWalletSigner(generatePrivateKey());
            await person.client.unsafe_addAccount(linked.signer, true);
            last = linked.address;
          }
          await chain.write(token, "TestERC20", "mint", [last, 10n ** 18n]);
          const [t, decision] = await time(() => decideJoin(a.app, { groupId, address: person.address }, "webhook"));
          if (decision.status !== "SUCCESS") throw new Error(`bench linked join failed: ${JSON.stringify(decision)}`);
          joins.push(t);
          const [tr, found] = await time(() => a.app.xmtp.inboxAddresses(person.inboxId));
          if (found.length !== count) throw new Error(`expected ${count} wallets, read ${found.length}`);
          reads.push(tr);
        }
        const label = `linked ${protocol} @40 ms, ${count} wallet${count === 1 ? "" : "s"}`;
        rows.push(["-", `${label}: join (webhook decision)`, `p50 ${pct(joins, 0.5)} ms, p95 ${pct(joins, 0.95)} ms`, "", "inbox wallets + one JSON-RPC batch + the admission commit; tokens on the last wallet"]);
        rows.push(["-", `${label}: inbox wallets read`, `p50 ${pct(reads, 0.5)} ms, p95 ${pct(reads, 0.95)} ms`, "", protocol === "v3" ? "binding's inbox state, no client" : "GetNodes + QueryEnvelopes, replayed here"]);
      }
      await a.xmtp.close();
    } finally {
      for (const p of people) await p.close();
      await chain.stop();
    }
  });
}

// Writes as the backend's database grows: the database padded with real groups and messages (a member's large
// messages, synced in at 0 ms latency), then operator sends at 40 ms per call with and without write-ahead, and a
// cold start's first operation, at about 3, 30 and 100 MB.
if (want("size")) {
  // Padded databases are kept between runs outside git (the local node's store, the Redis keys, the wallet): padding
  // to 100 MB takes minutes. Only on a node this bench started: loading replaces everything the node holds.
  const bindings = (JSON.parse(await readFile(join("node_modules", "@xmtp", "node-bindings", "package.json"), "utf8")) as { version: string }).version;
  const fixtures = join(process.env.BENCH_FIXTURES_DIR ?? join(homedir(), ".cache", "xmtp-token-gated-groups"), `bench-size-v1-bindings-${bindings}`);
  const direct = new IORedis(server.url);
  type Fixture = { walletKey: string; keyPrefix: string; groupId: string };
  const saveFixture = async (target: number, meta: Fixture) => {
    const dir = join(fixtures, String(target));
    await mkdir(dir, { recursive: true });
    await nodeRequest("/control", { body: { saveStateTo: join(dir, "node.bin") } });
    const keys = await direct.keys(`${meta.keyPrefix}:*`);
    const dumps = await Promise.all(keys.map(async (key) => [key, await direct.dumpBuffer(key)] as const));
    await writeFile(join(dir, "redis.bin"), serialize(dumps.filter(([, d]) => d !== null)));
    await writeFile(join(dir, "meta.json"), JSON.stringify(meta));
  };
  const loadFixture = async (target: number) => {
    const dir = join(fixtures, String(target));
    await nodeRequest("/control", { body: { loadStateFrom: join(dir, "node.bin") } });
    const meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8")) as Fixture;
    for (const key of await direct.keys(`${meta.keyPrefix}:*`)) await direct.del(key);
    for (const [key, dump] of deserialize(await readFile(join(dir, "redis.bin"))) as [string, Buffer][]) await direct.restore(key, 0, dump, "REPLACE");
    return meta;
  };
  const targets = [3, 30, 100];
  await onLocalNode(0, async (dirs, gatewayUrl, nodeStartedHere) => {
    const protocol: XmtpProtocol = "v3";
    const cached = nodeStartedHere && targets.every((t) => existsSync(join(fixtures, String(t), "meta.json")));
    const meta: Fixture = cached ? await loadFixture(targets[0]!) : { walletKey: "", keyPrefix: `benchsize${Date.now()}`, groupId: "" };
    const safe = localDeployment(dirs, meta.keyPrefix, { protocol, gatewayUrl, ...(cached ? { sameWallet: meta } : {}) });
    meta.walletKey = safe.walletKey;
    const unsafe = localDeployment(dirs, meta.keyPrefix, { protocol, gatewayUrl, writeAhead: false, sameWallet: safe });
    // As this code did before: the client's database closed after every session.
    const closing = localDeployment(dirs, meta.keyPrefix, { protocol, gatewayUrl, releaseBetweenSessions: true, sameWallet: safe });
    const a = await safe();
    const talker = cached ? null : await createPerson({ protocol });
    if (!cached) {
      meta.groupId = (await createGroup(a.app, { name: "Padded", description: "", rules: { type: "open" } })).groupId;
      await addMembers(a.app, meta.groupId, [talker!.address]);
    }
    const { groupId } = meta;
    const size = async () => ((await a.xmtp.durable.store.readManifest())?.files.reduce((n, f) => n + f.size, 0) ?? 0) / 1024 / 1024;
    const padTo = async (targetMb: number) => {
      while ((await size()) < targetMb) {
        const g = (await talker!.group(groupId))!;
        for (let i = 0; i < 20; i++) {
          // The talker's own libxmtp may hold its database for a moment (its workers): try that message again.
          for (let attempt = 0; ; attempt++) {
            try {
              await g.sendText(randomBytes(96 * 1024).toString("base64"));
              break;
            } catch (error) {
              if (attempt >= 5 || !/database is locked/.test(String(error))) throw error;
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        }
        await a.app.xmtp.withSession((session) => session.listMessages(groupId, { limit: 1 }));
      }
    };
    const sendsOn = async (instance: Awaited<ReturnType<typeof safe>>, n: number) => {
      const t: number[] = [];
      for (let i = 0; i < n; i++) t.push((await time(() => sendMessage(instance.app, groupId, `size ${i}`)))[0]);
      return t.slice(1).sort((x, y) => x - y)[Math.floor((n - 1) / 2)]!;
    };
    const atSizes: { mb: number; safeMs: number; unsafeMs: number; closingMs: number; coldMs: number }[] = [];
    for (const target of targets) {
      await nodeRequest("/control", { body: { latencyMs: 0 } });
      if (cached) await loadFixture(target);
      else {
        await padTo(target);
        if (nodeStartedHere) await saveFixture(target, meta);
      }
      await nodeRequest("/control", { body: { latencyMs: 40 } });
      const u = await unsafe();
      const unsafeMs = await sendsOn(u, 12);
      await u.xmtp.close();
      const c = await closing();
      const closingMs = await sendsOn(c, 12);
      await c.xmtp.close();
      const safeMs = await sendsOn(a, 12);
      const cold = await safe();
      const [coldMs] = await time(() => sendMessage(cold.app, groupId, "cold"));
      await cold.xmtp.close();
      atSizes.push({ mb: await size(), safeMs, unsafeMs, closingMs, coldMs });
    }
    const first = atSizes[0]!;
    for (const x of atSizes) {
      rows.push([
        `${x.mb.toFixed(0)} MB`,
        `size @40 ms: operator send, write-ahead vs none`,
        `p50 ${x.safeMs.toFixed(0)} ms vs ${x.unsafeMs.toFixed(0)} ms (${(x.safeMs / x.unsafeMs).toFixed(2)}×)`,
        "",
        `${(x.safeMs / first.safeMs).toFixed(2)}× the send at ${first.mb.toFixed(0)} MB (goals: ≤ 1.3× without, ≤ 1.5× at 100 MB); ` +
          `closing the database after each session (before): ${x.closingMs.toFixed(0)} ms; cold start's first send ${x.coldMs.toFixed(0)} ms`,
      ]);
    }
    rows.push(["-", "size: padded databases", cached ? "loaded from the cache" : nodeStartedHere ? "padded now, cached" : "padded now (a node not started here: not cached)", "", fixtures]);
    await talker?.close();
    await a.xmtp.close();
    direct.disconnect();
  });
}

// Re-verification at scale: one cron run, measured, over groups of synthetic members (recorded in Redis, holdings set
// on anvil) with the real client against the local node at 40 ms per call and an RPC provider 40 ms away (a proxy that
// counts HTTP requests and JSON-RPC calls). What 1,000 groups × 250 members a day needs is derived from it.
if (want("reverify")) {
  const GROUPS = Number(process.env.BENCH_REVERIFY_GROUPS ?? 20);
  const PER_GROUP = 250;
  const chain = await startLocalChain(100);
  const token = (await chain.deploy("TestERC20", ["Gate", "GATE", 18])).toLowerCase() as `0x${string}`;
  const rpc = { requests: 0, calls: 0 };
  const proxy = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on("data", (c: Buffer) => body.push(c));
    req.on("end", () => {
      const text = Buffer.concat(body).toString();
      rpc.requests++;
      const parsed = JSON.parse(text) as unknown;
      rpc.calls += Array.isArray(parsed) ? parsed.length : 1;
      setTimeout(() => {
        void fetch(chain.url, { method: "POST", headers: { "content-type": "application/json" }, body: text }).then(async (r) => {
          res.writeHead(r.status, { "content-type": "application/json" });
          res.end(await r.text());
        });
      }, 40);
    });
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const rpcUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  // balanceOf is TestERC20's fourth slot: a holder's balance is set directly, a thousand per JSON-RPC batch.
  const balanceSlot = (holder: string) => keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [holder as `0x${string}`, 3n]));
  const setBalances = async (holders: string[]) => {
    for (let i = 0; i < holders.length; i += 1000) {
      const batch = holders.slice(i, i + 1000).map((h, j) => ({ jsonrpc: "2.0", id: j, method: "anvil_setStorageAt", params: [token, balanceSlot(h), `0x${(10n ** 18n).toString(16).padStart(64, "0")}`] }));
      await fetch(chain.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(batch) });
    }
  };
  await onLocalNode(40, async (dirs, gatewayUrl) => {
    const deployment = localDeployment(dirs, `benchreverify${Date.now()}`, {
      protocol: "v3",
      gatewayUrl,
      env: { RPC_URL_100: rpcUrl, REVERIFY_GRACE_HOURS: "0", ELIGIBILITY_CACHE_TTL_SECONDS: "0" },
    });
    const a = await deployment();
    const rules = { type: "erc20" as const, chainId: 100, token, minBalance: "1" };
    const holders: string[] = [];
    let lapsed = 0;
    for (let g = 0; g < GROUPS; g++) {
      const { groupId } = await createGroup(a.app, { name: `Reverify ${g}`, description: "", rules });
      const members = Array.from({ length: PER_GROUP }, () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as `0x${string}`);
      await a.app.members.recordMany(groupId, members.map((address) => ({ address, via: "webhook" as const, mode: "keep" as const })));
      // One member in 25 sold their tokens since joining.
      holders.push(...members.filter((_, i) => i % 25 !== 0));
      lapsed += members.filter((_, i) => i % 25 === 0).length;
    }
    await setBalances(holders);
    const before = { ...rpc };
    const [runMs, report] = await time(() => reverifyMembers(a.app, { dryRun: false }));
    const requests = rpc.requests - before.requests;
    const calls = rpc.calls - before.calls;
    const perSecond = (report.membersChecked / runMs) * 1000;
    const groupMs = runMs / report.groupsChecked;
    const budgetS = DEFAULT_REVERIFY_LIMITS.timeBudgetMs / 1000;
    const membersPerRun = Math.floor(perSecond * budgetS);
    // 1,000 groups × 250 members: the run's own pace (groups and their members together) over its time budget.
    const runsNeeded = Math.ceil((1000 * groupMs) / 1000 / budgetS);
    rows.push([
      `${report.groupsChecked} × ${PER_GROUP}`,
      "reverify @40 ms (XMTP and RPC): one cron run",
      `${(runMs / 1000).toFixed(1)} s, ${perSecond.toFixed(0)} members/s, ${groupMs.toFixed(0)} ms per group of ${PER_GROUP}`,
      "",
      `${report.membersChecked} checked, ${report.removed.length} removed (of ${lapsed} lapsed), ${report.skipped.length} skipped, ${report.failedGroups.length} failed; ` +
        `${requests} RPC HTTP requests for ${calls} calls (${(calls / Math.max(1, requests)).toFixed(0)} per request)`,
    ]);
    rows.push([
      "1000 × 250",
      "reverify: derived for a day",
      `${runsNeeded} run(s) of ${budgetS} s`,
      "",
      `${membersPerRun} members per run at this pace; the hourly schedule (Pro) gives 24 runs a day, the daily one (Hobby) 1`,
    ]);
    await a.xmtp.close();
  });
  await new Promise<void>((r) => proxy.close(() => r()));
  await chain.stop();
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
console.log(`bridge: ${bridge.stats.requests} requests, largest ${mb(bridge.stats.maxRequestBytes)} (Upstash limit 10 MB)`);
await bridge.close();
await server.stop();
process.exit(0);
