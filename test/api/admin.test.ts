import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { setApp } from "../../lib/app.js";
import { JOIN_PAGE_HEADERS } from "../../lib/http/join-page-html.js";
import { reverifyMembers } from "../../lib/use-cases/reverify.js";
import { startLocalServer, type LocalRoute } from "../../scripts/local-server.js";
import { ADMIN_KEY, BACKEND_KEY, createTestApp, WEBHOOK_SECRET, type TestApp } from "../support/test-app.js";

// The dashboard over a real HTTP server (the local server: vercel.json's rewrites, public/ assets), real Redis and
// the XMTP double: the session cookie, the Origin check, who acted, and that no secret ever reaches a browser.
const ROOT = join(import.meta.dirname, "..", "..");
const RPC_SECRET = "rpc-path-secret-0123456789";
const admin = privateKeyToAccount(generatePrivateKey());
let t: TestApp;
let base: string;
let routes: readonly LocalRoute[];
let close: (this: void) => Promise<void>;
let clock = Date.now();

beforeAll(async () => {
  const server = await startLocalServer();
  base = server.url;
  routes = server.routes;
  close = () => server.close();
  t = createTestApp({
    env: { PUBLIC_URL: base, LINK_SERVICE_URL: "", LINK_BASE_URL: "", ADMIN_ADDRESSES: admin.address, RPC_URL_8453: `https://base.example.test/v2/${RPC_SECRET}`, CRON_SECRET: "cron-secret-for-tests-0123" },
    overrides: { now: () => new Date(clock) },
  });
  setApp(t.app);
});
afterAll(async () => {
  setApp(undefined);
  await close();
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}
async function call(method: string, path: string, options: { body?: unknown; cookie?: string; origin?: string | null; bearer?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.cookie) headers.cookie = `__Host-tg_admin=${options.cookie}`;
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  if (options.origin !== null) headers.origin = options.origin ?? base;
  const res = await fetch(base + path, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // HTML or a static file.
  }
  return { status: res.status, headers: res.headers, text, body };
}

async function signIn(account = admin): Promise<{ answer: Answer; token: string }> {
  const challenge = await call("POST", "/api/admin/challenge", { body: { address: account.address, chainId: 1 } });
  expect(challenge.status).toBe(200);
  const message = challenge.body.message as string;
  const answer = await call("POST", "/api/admin/session", { body: { message, signature: await account.signMessage({ message }) } });
  return { answer, token: /__Host-tg_admin=([^;]+)/.exec(answer.headers.get("set-cookie") ?? "")?.[1] ?? "" };
}
const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as `0x${string}`;

describe("the dashboard's session", () => {
  it("sets an HttpOnly, Secure, SameSite=Strict host cookie that the operator API accepts", async () => {
    const { answer, token } = await signIn();
    expect(answer.status).toBe(200);
    const cookie = answer.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^__Host-tg_admin=[A-Za-z0-9_-]{43}; /);
    for (const attribute of ["Path=/", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=28800"]) expect(cookie.split("; ")).toContain(attribute);
    expect((await call("GET", "/api/admin/session", { cookie: token })).body).toMatchObject({ address: admin.address.toLowerCase() });
    expect((await call("GET", "/api/groups", { cookie: token, origin: null })).status).toBe(200);
    expect((await call("GET", "/api/groups", { origin: null })).status).toBe(401);
    expect((await call("GET", "/api/groups", { cookie: "x".repeat(43), origin: null })).status).toBe(401);
  });

  it("refuses a change carried by the cookie from another origin or none (403), and takes it from its own", async () => {
    const { token } = await signIn();
    const noOrigin = await call("POST", "/api/create", { cookie: token, origin: null, body: { name: "CSRF" } });
    expect(noOrigin.status).toBe(403);
    expect((noOrigin.body.error as { message: string }).message).toContain("Cross-site request refused");
    expect((await call("POST", "/api/create", { cookie: token, origin: "https://evil.example", body: { name: "CSRF" } })).status).toBe(403);
    // The API key needs no Origin: scripts and the CLI keep working.
    expect((await call("POST", "/api/create", { bearer: ADMIN_KEY, origin: null, body: { name: "Script" } })).status).toBe(201);
    expect((await call("POST", "/api/create", { cookie: token, body: { name: "From the dashboard" } })).status).toBe(201);
    expect((await call("GET", "/api/groups")).status).toBe(401);
  });

  it("signs out: the cookie is cleared and the session is gone from Redis", async () => {
    const { token } = await signIn();
    expect((await call("DELETE", "/api/admin/session", { cookie: token, origin: "https://evil.example" })).status).toBe(403);
    const out = await call("DELETE", "/api/admin/session", { cookie: token });
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    expect((await call("GET", "/api/groups", { cookie: token })).status).toBe(401);
    expect((await call("GET", "/api/admin/session", { cookie: token })).status).toBe(401);
  });

  it("lets several admins be signed in at once", async () => {
    const first = await signIn();
    const second = await signIn();
    expect(first.token).not.toBe(second.token);
    await call("DELETE", "/api/admin/session", { cookie: first.token });
    expect((await call("GET", "/api/groups", { cookie: second.token })).status).toBe(200);
  });
});

describe("who acted, and the groups list", () => {
  it("records the admin's address on their adds and removals, and api-key on the script's", async () => {
    const { token } = await signIn();
    const created = await call("POST", "/api/create", { cookie: token, body: { name: "Actors" } });
    const groupId = created.body.groupId as string;
    const [a, b] = [wallet(), wallet()];
    t.network.register(a);
    t.network.register(b);
    expect((await call("POST", `/api/groups/${groupId}/members`, { cookie: token, body: { addresses: [a] } })).status).toBe(200);
    expect((await call("POST", `/api/groups/${groupId}/members`, { bearer: ADMIN_KEY, body: { addresses: [b] } })).status).toBe(200);
    expect((await call("DELETE", `/api/groups/${groupId}/members`, { cookie: token, body: { addresses: [b] } })).status).toBe(200);
    const audit = await call("GET", `/api/groups/${groupId}/audit?type=changes`, { cookie: token });
    const entries = audit.body.entries as { action: string; address: string; actor?: string }[];
    expect(entries.map((e) => [e.action, e.address, e.actor])).toEqual([
      ["remove", b, admin.address.toLowerCase()],
      ["add", b, "api-key"],
      ["add", a, admin.address.toLowerCase()],
    ]);
  });

  it("audits the operator's changes to the group itself (edit, join link, message) with who made them", async () => {
    const { token } = await signIn();
    const groupId = (await call("POST", "/api/create", { cookie: token, body: { name: "Edits" } })).body.groupId as string;
    expect((await call("PATCH", `/api/groups/${groupId}`, { cookie: token, body: { name: "Edited", rules: { type: "open" } } })).status).toBe(200);
    expect((await call("POST", `/api/groups/${groupId}/join-link`, { bearer: ADMIN_KEY, body: { action: "rotate" } })).status).toBe(200);
    expect((await call("POST", `/api/groups/${groupId}/messages`, { cookie: token, body: { text: "hello" } })).status).toBe(201);
    const entries = (await call("GET", `/api/groups/${groupId}/audit?type=changes`, { cookie: token })).body.entries as Record<string, unknown>[];
    expect(entries.map(({ action, outcome, reason, actor, address }) => ({ action, outcome, reason, actor, address }))).toEqual([
      { action: "message", outcome: "sent", reason: undefined, actor: admin.address.toLowerCase(), address: undefined },
      { action: "join-link", outcome: "changed", reason: "rotate", actor: "api-key", address: undefined },
      { action: "edit", outcome: "changed", reason: "name, rules", actor: admin.address.toLowerCase(), address: undefined },
    ]);
  });

  it("checks rules without creating anything (POST /api/create?dryRun=1): the rules as stored, in plain words, or the errors at their path", async () => {
    const { token } = await signIn();
    const before = (await call("GET", "/api/groups", { cookie: token })).body.total;
    const listed = wallet();
    const ok = await call("POST", "/api/create?dryRun=1", { cookie: token, body: { name: "Preview", rules: { any: [{ type: "allowlist", addresses: [listed] }, { type: "open" }] } } });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ rules: { any: [{ type: "allowlist", addresses: [listed] }, { type: "open" }] }, requirement: expect.stringContaining("allowlist") as unknown });
    const noRpc = await call("POST", "/api/create?dryRun=1", { cookie: token, body: { name: "Preview", rules: { type: "erc20", chainId: 10, token: wallet(), minBalance: "1" } } });
    expect(noRpc.status).toBe(400);
    expect(noRpc.body.error).toMatchObject({ code: "invalid_request", issues: [{ path: "rules" }] });
    expect((await call("POST", "/api/create?dryRun=1", { cookie: token, origin: null, body: { name: "Preview" } })).status).toBe(403);
    expect((await call("GET", "/api/groups", { cookie: token })).body.total).toBe(before);
  });

  it("counts joins and denials of the last 24 hours per group", async () => {
    const { token } = await signIn();
    const created = await call("POST", "/api/create", { cookie: token, body: { name: "Busy" } });
    const groupId = created.body.groupId as string;
    clock = Date.now() - 25 * 3600 * 1000;
    await t.app.audit.append(groupId, { source: "webhook", action: "join", address: wallet(), outcome: "added" });
    await t.app.audit.append(groupId, { source: "webhook", action: "join", address: wallet(), outcome: "denied", reason: "old" });
    clock = Date.now();
    await t.app.audit.append(groupId, { source: "join-page", action: "join", address: wallet(), outcome: "added" });
    await t.app.audit.append(groupId, { source: "join-page", action: "join", address: wallet(), outcome: "denied", reason: "r" });
    await t.app.audit.append(groupId, { source: "join-page", action: "join", address: wallet(), outcome: "not-on-xmtp" });
    const list = await call("GET", "/api/groups?limit=100", { cookie: token });
    const group = (list.body.groups as { groupId: string; last24h: unknown; joinLinkEnabled: boolean }[]).find((g) => g.groupId === groupId);
    expect(group).toMatchObject({ last24h: { joins: 1, denials: 2 }, joinLinkEnabled: true });
  });

  it("shows the status: network, chains by name, the cron's last run, never an RPC URL", async () => {
    const { token } = await signIn();
    const before = await call("GET", "/api/status", { cookie: token });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ xmtp: { env: "dev", network: "v3", gatewayConfigured: false }, chains: [{ chainId: 8453, name: "Base" }], cron: { configured: true, lastRun: null }, admins: 1 });
    expect(before.text).not.toContain(RPC_SECRET);
    expect(before.text).not.toContain("base.example.test");
    await reverifyMembers(t.app, { dryRun: false });
    const after = await call("GET", "/api/status", { cookie: token });
    expect((after.body.cron as { lastRun: { groupsChecked: number; stoppedBy: string } | null }).lastRun).toMatchObject({ stoppedBy: "done" });
  });
});

describe("what a browser gets", () => {
  it("serves /admin under the join page's strict CSP, with no inline script", async () => {
    const page = await call("GET", "/admin", { origin: null });
    expect(page.status).toBe(200);
    for (const [name, value] of Object.entries(JOIN_PAGE_HEADERS)) expect(page.headers.get(name)).toBe(value);
    const scripts = [...page.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, inline] of scripts) {
      expect(attributes).toMatch(/src="\/assets\/[a-z-]+\.js"/);
      expect(inline).toBe("");
    }
    expect(page.text).not.toMatch(/\son[a-z]+=/i);
  });

  it("ships qrcode-generator's file exactly as the package has it", () => {
    expect(readFileSync(join(ROOT, "public/assets/qrcode.js"), "utf8")).toBe(readFileSync(join(ROOT, "node_modules/qrcode-generator/dist/qrcode.js"), "utf8"));
  });

  it("never puts ADMIN_API_KEY (or another secret) in any response, header or asset", async () => {
    const { token } = await signIn();
    const created = await call("POST", "/api/create", { bearer: ADMIN_KEY, body: { name: "Scan" } });
    const groupId = created.body.groupId as string;
    const linkId = created.body.joinLinkId as string;
    const secrets = [ADMIN_KEY, WEBHOOK_SECRET, BACKEND_KEY, BACKEND_KEY.slice(2), t.config.xmtp.dbEncryptionKey, t.config.redis.token, RPC_SECRET];
    const answers: { what: string; answer: Answer }[] = [];
    const bodies = [undefined, {}, { name: "x" }, { addresses: [wallet()] }, { text: "hi" }, { action: "disable" }, { message: "m", signature: "0x00" }];
    // Every function, as a stranger, with the cookie and with the key, by every method, with bodies good and bad.
    for (const route of routes) {
      const path = `/api/${route.file.replace(/\.ts$/, "").replace(/(^|\/)index$/, "").replace("[id]", groupId)}`;
      for (const method of ["GET", "POST", "PATCH", "DELETE", "PUT"]) {
        for (const auth of [{}, { cookie: token }, { bearer: ADMIN_KEY }, { bearer: "wrong-key-0123456789abcdef0123456789" }]) {
          for (const body of method === "GET" ? [undefined] : bodies) {
            if (body && "action" in body && path.endsWith("/join-link")) continue;
            answers.push({ what: `${method} ${path} ${JSON.stringify(auth).replace(ADMIN_KEY, "KEY").replace(token, "TOKEN")} ${JSON.stringify(body)}`, answer: await call(method, path, { ...auth, ...(body ? { body } : {}) }) });
          }
        }
      }
    }
    for (const path of ["/admin", `/join/${linkId}`, "/join/nope", "/no-such-page"]) answers.push({ what: `GET ${path}`, answer: await call("GET", path, { cookie: token }) });
    const assets = readdirSync(join(ROOT, "public/assets"));
    expect(assets).toEqual(expect.arrayContaining(["admin.js", "admin.css", "qrcode.js", "join.js", "join.css"]));
    for (const file of assets) {
      const answer = await call("GET", `/assets/${file}`);
      expect(answer.status, file).toBe(200);
      answers.push({ what: `asset ${file}`, answer });
    }
    expect(answers.length).toBeGreaterThan(300);
    const leaks = answers.flatMap(({ what, answer }) => {
      const everything = `${answer.text}\n${[...answer.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}`;
      return secrets.filter((s) => everything.includes(s)).map(() => what);
    });
    expect(leaks).toEqual([]);
    // Nothing answered 500: every bad request is a 4xx with words.
    expect(answers.filter(({ answer }) => answer.status >= 500).map(({ what, answer }) => `${what} → ${answer.status}`)).toEqual([]);
  }, 120_000);
});
