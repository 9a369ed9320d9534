import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BaseError } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import createRoute from "../../api/create.js";
import challengeRoute from "../../api/join/challenge.js";
import joinRoute from "../../api/join/index.js";
import { setApp } from "../../lib/app.js";
import type { Rules } from "../../lib/shared/rules.js";
import { createLogger, describeError, withoutUrlSecrets } from "../../lib/shared/log.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { freePort } from "../../local/redis/redis-server.js";
import { adminPost, post } from "../support/requests.js";
import { createTestApp, type TestApp } from "../support/test-app.js";

describe("what a log line may say of an endpoint", () => {
  it("cuts every URL to its scheme and host (credentials, path and query go)", () => {
    expect(withoutUrlSecrets("POST https://base-mainnet.g.alchemy.com/v2/SECRETKEY?x=1 failed")).toBe("POST https://base-mainnet.g.alchemy.com/… failed");
    expect(withoutUrlSecrets("at wss://user:pass@rpc.example/ws/key")).toBe("at wss://rpc.example/…");
    expect(withoutUrlSecrets("no url here")).toBe("no url here");
  });

  it("describes viem's errors by their short message, which names no URL", () => {
    const error = new BaseError("HTTP request failed.", { details: "fetch failed", metaMessages: ["URL: https://rpc.example/v2/SECRETKEY"] });
    const described = JSON.stringify(describeError(error));
    expect(described).toContain("HTTP request failed.");
    expect(described).not.toContain("SECRETKEY");
  });
});

describe("no secret reaches the logs (attacks that make errors on purpose)", () => {
  const RPC_KEY = "rpc-api-key-7c1f3e";
  const CRON = "cron-secret-for-the-log-test";
  const lines: string[] = [];
  let chain: LocalChain;
  let t: TestApp;
  let deadRpc: string;

  beforeAll(async () => {
    chain = await startLocalChain(31337);
    deadRpc = `http://127.0.0.1:${await freePort()}/v2/${RPC_KEY}?apikey=${RPC_KEY}`;
    t = createTestApp({
      env: { LINK_SERVICE_URL: "", LINK_BASE_URL: "", RPC_URL_31337: chain.url, RPC_URL_8453: deadRpc, CRON_SECRET: CRON, ELIGIBILITY_CACHE_TTL_SECONDS: "0" },
      overrides: { logger: createLogger((_level, line) => lines.push(line)) },
    });
    setApp(t.app);
  }, 60_000);
  afterAll(async () => {
    setApp(undefined);
    await chain?.stop();
  });

  it("a junk contract signature while the chain's RPC is down, a create and a join reading a dead RPC: logged, without the RPC's key or any configured secret", async () => {
    // A group on the chain whose RPC is down, made directly (create would refuse rules it cannot read).
    const rules: Rules = { type: "erc20", chainId: 8453, token: `0x${"12".repeat(20)}`, minBalance: "1", decimals: 18, symbol: "T" };
    const groupId = (await t.app.xmtp.withSession((s) => s.createGroup({ name: "Dead RPC", description: "" }))).groupId;
    await t.app.registry.insertPending({ groupId, name: "Dead RPC", description: "", rules });
    await t.app.registry.activate(groupId, null);
    const { linkId } = await t.app.joinLinks.ensure(groupId);

    // 1. Sign-in of a wallet contract on that chain with a signature that is no key's.
    const wallet = privateKeyToAccount(generatePrivateKey()).address;
    const challenge = await challengeRoute.fetch(post("/api/join/challenge", { linkId, address: wallet, chainId: 8453 }, { "x-forwarded-for": "203.0.113.50" }));
    const { message } = (await challenge.json()) as { message: string };
    const join = await joinRoute.fetch(post("/api/join", { message, signature: `0x${"ab".repeat(100)}` }, { "x-forwarded-for": "203.0.113.50" }));
    expect(join.status).toBe(503);
    // 2. Create with rules on that chain.
    const create = await createRoute.fetch(adminPost("/api/create", { name: "x", rules: { type: "erc20", chainId: 8453, token: `0x${"34".repeat(20)}`, minBalance: "1" } }));
    expect(create.status).toBe(503);
    // 3. A key's sign-in to that group: its holdings are read on the dead chain.
    const person = privateKeyToAccount(generatePrivateKey());
    const issued = await challengeRoute.fetch(post("/api/join/challenge", { linkId, address: person.address, chainId: 1 }, { "x-forwarded-for": "203.0.113.51" }));
    const text = ((await issued.json()) as { message: string }).message;
    const holdings = await joinRoute.fetch(post("/api/join", { message: text, signature: await person.signMessage({ message: text }) }, { "x-forwarded-for": "203.0.113.51" }));
    expect(holdings.status).toBe(503);

    const log = lines.join("\n");
    expect(log).toMatch(/dependency_unavailable/);
    expect(log).toContain("127.0.0.1");
    for (const secret of [RPC_KEY, CRON, t.config.adminApiKey, t.config.webhookSecret, t.config.xmtp.walletKey.slice(2), t.config.xmtp.dbEncryptionKey, t.config.redis.token]) {
      expect(log, "a configured secret in the logs").not.toContain(secret);
    }
  });
});
