import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../lib/config.js";
import { createJoinLinkStore } from "../lib/stores/join-links.js";
import { webhookToken } from "../lib/services/webhook-token.js";
import { createGroupRegistry } from "../lib/stores/registry.js";
import { freePort } from "../local/redis/redis-server.js";
import { ADMIN_KEY, testEnv, testRedis, WEBHOOK_SECRET } from "./support/test-app.js";
import { clearFaults, injectFaults, nodeGroupStats } from "./support/xmtp-people.js";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

// The functions under the real Vercel dev runtime (`vercel dev --local`, no account), not only our own server.
// XMTP_ENV=local points the real SDK at the local XMTP node on localhost:5556 (started by the global setup).
/** The newest CLI the npm registry serves here that runs `vercel dev --local`. */
const VERCEL_CLI = "60.1.3";
let child: ChildProcess;
let base: string;
let output = "";
let env: Record<string, string>;
const admin = privateKeyToAccount(generatePrivateKey());

beforeAll(async () => {
  const key = `0x${randomBytes(32).toString("hex")}`;
  env = testEnv({ XMTP_ENV: "local", XMTP_WALLET_KEY: key, XMTP_DB_DIR: await mkdtemp(join(tmpdir(), "vercel-dev-xmtp-")), LINK_SERVICE_URL: "", LINK_BASE_URL: "", ADMIN_ADDRESSES: admin.address });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const bin = join(process.cwd(), "node_modules", ".bin");
  // Through npx, not a devDependency: the CLI's optional per-platform packages are not all on every registry
  // mirror, which leaves a lockfile `npm ci` rejects. npx caches it after the first run.
  child = spawn("npx", ["--yes", `vercel@${VERCEL_CLI}`, "dev", "--local", "--yes", "--listen", String(port)], {
    env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH ?? ""}`, VERCEL_TELEMETRY_DISABLED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
  const deadline = Date.now() + 200_000;
  while (!/Ready! Available/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`vercel dev did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 240_000);

afterAll(() => {
  child?.kill("SIGTERM");
});

const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(base + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

describe("under vercel dev --local", () => {
  it("answers 401 and 405 as JSON", async () => {
    const unauthorized = await postJson("/api/create", { name: "x" });
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toMatchObject({ error: { code: "unauthorized" } });
    const wrongMethod = await fetch(base + "/api/webhook");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  }, 60_000);

  it("answers DENIED for a link it does not know, reading Redis through the Upstash client", async () => {
    const res = await postJson(`/api/webhook?token=${webhookToken(WEBHOOK_SECRET, "abcd")}`, {
      groupLinkId: "L",
      topic: "abcd",
      walletAddress: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "DENIED", reason: "This group link is not active" });
  }, 60_000);

  it("runs the real XMTP client: 503 while the network refuses the group's commit, then 201 with the group on the node", async () => {
    // Faults are scoped by the client's app version; this deployment's is the default one.
    const appVersion = loadConfig(env).xmtp.appVersion;
    await injectFaults(appVersion, [{ method: "SendGroupMessages", commitsOnly: true, when: "before", count: 100 }]);
    const refused = await postJson("/api/create", { name: "x" }, { authorization: `Bearer ${ADMIN_KEY}`, "idempotency-key": "vercel-dev-1" });
    await clearFaults(appVersion);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ error: { code: "unavailable", message: "The XMTP network is unavailable; try again in a moment" } });
    const created = await postJson("/api/create", { name: "x" }, { authorization: `Bearer ${ADMIN_KEY}`, "idempotency-key": "vercel-dev-1" });
    expect(created.status).toBe(201);
    const { groupId } = (await created.json()) as { groupId: string };
    expect((await nodeGroupStats(groupId)).commits).toBeGreaterThanOrEqual(1);
  }, 90_000);
});

describe("the join page under vercel dev --local", () => {
  it("rewrites /join/<id> to the page function: the group's page, or the friendly 404", async () => {
    // Seeded straight into Redis under the dev server's key prefix.
    const registry = createGroupRegistry(testRedis(), env.REDIS_KEY_PREFIX!);
    await registry.insertPending({ groupId: "beef01", name: "Vercel dev group", description: "", rules: { type: "open" } });
    await registry.activate("beef01", null);
    const { linkId } = await createJoinLinkStore(testRedis(), env.REDIS_KEY_PREFIX!).ensure("beef01");

    const page = await fetch(`${base}/join/${linkId}`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(await page.text()).toContain("<h1>Vercel dev group</h1>");

    const missing = await fetch(`${base}/join/${"Q".repeat(22)}`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain("This link doesn't work");
  }, 60_000);

  it("serves the page's script and stylesheet from public/, and none of the project's own files", async () => {
    const script = await fetch(`${base}/assets/join.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
    expect(script.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await script.text()).toContain("/api/join/challenge");
    expect((await fetch(`${base}/assets/join.css`)).status).toBe(200);
    for (const path of ["/package.json", "/lib/config.ts", "/.env.example", "/README.md"]) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(404);
    }
  }, 60_000);

  it("serves the dashboard at /admin (rewritten, strict CSP, its assets) and its session cookie reaches the operator API", async () => {
    const page = await fetch(`${base}/admin`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await page.text()).toContain('<script src="/assets/admin.js" defer></script>');
    for (const asset of ["/assets/admin.js", "/assets/admin.css", "/assets/qrcode.js"]) expect((await fetch(base + asset)).status, asset).toBe(200);

    const { message } = (await (await postJson("/api/admin/challenge", { address: admin.address, chainId: 1 })).json()) as { message: string };
    const signedIn = await postJson("/api/admin/session", { message, signature: await admin.signMessage({ message }) });
    expect(signedIn.status).toBe(200);
    const cookie = /__Host-tg_admin=[^;]+/.exec(signedIn.headers.get("set-cookie") ?? "")?.[0];
    expect(cookie).toBeDefined();
    expect((await fetch(`${base}/api/groups`, { headers: { cookie: cookie! } })).status).toBe(200);
    expect((await fetch(`${base}/api/groups`)).status).toBe(401);
  }, 60_000);

  it("answers the challenge endpoint's bad input with a JSON 400", async () => {
    const res = await postJson("/api/join/challenge", { linkId: "x" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "invalid_request" } });
  }, 60_000);
});
