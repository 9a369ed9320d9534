import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import { setApp } from "../../lib/app.js";
import { startLocalServer } from "../../scripts/local-server.js";
import { linkServiceOk, useLinkServiceMock } from "../support/link-service-mock.js";
import { ADMIN_KEY, createTestApp, WEBHOOK_SECRET } from "../support/test-app.js";
import { webhookToken } from "../../lib/services/webhook-token.js";

// The same handlers over a real HTTP server: headers, streaming bodies and status codes as a client sees them.
// Handlers given at setup: msw scopes `server.use` to the test's async context, and requests here arrive from sockets.
useLinkServiceMock(linkServiceOk("http1"));
const t = createTestApp();
let local: Awaited<ReturnType<typeof startLocalServer>>;
let base: string;
beforeAll(async () => {
  setApp(t.app);
  local = await startLocalServer();
  base = local.url;
});
afterAll(async () => {
  setApp(undefined);
  await local.close();
});

describe("the local server's routes", () => {
  it("are read from api/ as Vercel routes them: every function, no helper, static segments before dynamic ones", () => {
    const table = local.routes.map((r) => [r.file, r.pattern.source]);
    expect(table).toEqual([
      ["admin-page.ts", "^\\/api\\/admin-page$"],
      ["admin/challenge.ts", "^\\/api\\/admin\\/challenge$"],
      ["admin/session.ts", "^\\/api\\/admin\\/session$"],
      ["create.ts", "^\\/api\\/create$"],
      ["cron/reverify.ts", "^\\/api\\/cron\\/reverify$"],
      ["groups/index.ts", "^\\/api\\/groups$"],
      ["join-page.ts", "^\\/api\\/join-page$"],
      ["join/challenge.ts", "^\\/api\\/join\\/challenge$"],
      ["join/index.ts", "^\\/api\\/join$"],
      ["status.ts", "^\\/api\\/status$"],
      ["webhook.ts", "^\\/api\\/webhook$"],
      ["groups/[id].ts", "^\\/api\\/groups\\/[^/]+$"],
      ["groups/[id]/audit.ts", "^\\/api\\/groups\\/[^/]+\\/audit$"],
      ["groups/[id]/join-link.ts", "^\\/api\\/groups\\/[^/]+\\/join-link$"],
      ["groups/[id]/members.ts", "^\\/api\\/groups\\/[^/]+\\/members$"],
      ["groups/[id]/messages.ts", "^\\/api\\/groups\\/[^/]+\\/messages$"],
    ]);
  });

  it("follow vercel.json's rewrite: /join/<id> is the join page function, with the id as its query", async () => {
    const res = await fetch(`${base}/join/AAAAAAAAAAAAAAAAAAAAAA`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    // The captured segment is one value: it cannot add query parameters of its own.
    await t.app.registry.insertPending({ groupId: "beef02", name: "Real group", description: "", rules: { type: "open" } });
    await t.app.registry.activate("beef02", null);
    const { linkId } = await t.app.joinLinks.ensure("beef02");
    expect((await fetch(`${base}/join/${linkId}`)).status).toBe(200);
    const injected = await fetch(`${base}/join/AAAAAAAAAAAAAAAAAAAAAA&linkId=${linkId}`);
    expect(injected.status).toBe(404);
    expect(await injected.text()).not.toContain("Real group");
    expect((await fetch(`${base}/join/%E0%A4%A`)).status).toBe(404);
    expect((await fetch(`${base}/api/_operator`)).status).toBe(404);
    expect((await fetch(`${base}/api/groups/x/nope`)).status).toBe(404);
  });
});

describe("over HTTP", () => {
  it("creates a group, then a registered wallet joins through the webhook URL it registered", async () => {
    const created = await fetch(`${base}/api/create`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Over HTTP" }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("content-type")).toMatch(/application\/json/);
    const { groupId } = (await created.json()) as { groupId: string };

    const address = privateKeyToAccount(generatePrivateKey()).address;
    t.network.register(address);
    const joined = await fetch(`${base}/api/webhook?token=${webhookToken(WEBHOOK_SECRET, groupId)}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ groupLinkId: "http1", topic: groupId, walletAddress: address }),
    });
    expect(joined.status).toBe(200);
    expect(await joined.json()).toEqual({ status: "SUCCESS" });
  });

  it("413 for an oversized body, 400 for broken JSON, 405 with Allow, 404 for unknown paths", async () => {
    const big = await fetch(`${base}/api/webhook?token=x`, { method: "POST", headers: { "content-type": "application/json" }, body: "x".repeat(70_000) });
    expect(big.status).toBe(413);
    const broken = await fetch(`${base}/api/webhook?token=x`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(broken.status).toBe(400);
    const get = await fetch(`${base}/api/create`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect((await fetch(`${base}/api/nope`)).status).toBe(404);
  });
});
