import { http, HttpResponse } from "msw";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import createRoute from "../../api/create.js";
import { setApp } from "../../lib/app.js";
import { webhookToken } from "../../lib/services/webhook-token.js";
import { MAX_BODY_BYTES } from "../../lib/http/responses.js";
import { linkRequests, linkServiceOk, useLinkServiceMock } from "../support/link-service-mock.js";
import { adminPost, post } from "../support/requests.js";
import { createTestApp, LINK_SERVICE_URL, WEBHOOK_SECRET, type TestApp } from "../support/test-app.js";

const server = useLinkServiceMock();
let t: TestApp;
beforeEach(() => {
  t = createTestApp();
  setApp(t.app);
});
afterEach(() => setApp(undefined));

const create = (body: unknown, headers: Record<string, string> = {}) => createRoute.fetch(adminPost("/api/create", body, headers));

describe("POST /api/create", () => {
  it("creates an admin-only group, records it, registers its link and answers 201 with the link", async () => {
    server.use(linkServiceOk("abc123"));
    const res = await create({ name: "Holders", description: "For holders", rules: { type: "open" } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { groupId: string; groupLinkId: string; url: string; joinLinkId: string; joinUrl: string };
    expect(body).toMatchObject({ groupLinkId: "abc123", url: "https://links.example.test/group/abc123" });
    // The group's own join link comes beside the link service's.
    expect(body.joinUrl).toBe(`https://gated.example.test/join/${body.joinLinkId}`);
    expect(await t.app.joinLinks.resolve(body.joinLinkId)).toEqual({ groupId: body.groupId, enabled: true });
    expect(body.groupId).toMatch(/^[0-9a-f]{32}$/);
    expect(t.network.groups.get(body.groupId)?.info).toMatchObject({ name: "Holders", description: "For holders" });
    expect(linkRequests).toEqual([
      {
        webhook: `https://gated.example.test/api/webhook?token=${webhookToken(WEBHOOK_SECRET, body.groupId)}`,
        topic: body.groupId,
        name: "Holders",
        description: "For holders",
      },
    ]);
    expect(await t.app.registry.get(body.groupId)).toMatchObject({ state: "active", linkId: "abc123" });
  });

  it.each([
    ["no header", {}],
    ["wrong key", { authorization: "Bearer not-the-admin-key-000000000000000" }],
    ["wrong scheme", { authorization: "Basic abc" }],
  ])("401 with %s, before reading the body or starting XMTP", async (_label, headers) => {
    const res = await createRoute.fetch(post("/api/create", { name: "x" }, headers));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: "unauthorized", message: "Missing or invalid bearer token" } });
    expect(t.network.sessions).toBe(0);
  });

  it.each([
    ["missing name", { description: "d" }, /name/],
    ["empty name", { name: "  " }, /name: must not be empty/],
    ["long name", { name: "x".repeat(101) }, /at most 100/],
    ["long description", { name: "x", description: "d".repeat(1001) }, /at most 1000/],
    // XMTP counts bytes: 34 euro signs are 102 bytes of UTF-8.
    ["name over 100 bytes", { name: "€".repeat(34) }, /name: must be at most 100 bytes/],
    ["description over 1000 bytes", { name: "x", description: "é".repeat(501) }, /description: must be at most 1000 bytes/],
    ["unknown key", { name: "x", admin: true }, /admin/],
    ["unknown rule type", { name: "x", rules: { type: "nft" } }, /rules/],
    ["bad allowlist address", { name: "x", rules: { type: "allowlist", addresses: ["0x123"] } }, /0x followed by 40 hex/],
    ["bad checksum", { name: "x", rules: { type: "allowlist", addresses: ["0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"] } }, /checksum/],
    ["http image", { name: "x", imageUrl: "http://example.com/a.png" }, /https/],
  ])("400 for %s, naming the problem", async (_label, body, message) => {
    const res = await create(body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe("invalid_request");
    expect(json.error.message).toMatch(message);
    expect(t.network.sessions).toBe(0);
  });

  it("400 for a body that is not JSON, or not declared as JSON", async () => {
    const notJson = await create("{name:");
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: { message: "Request body is not valid JSON" } });
    const text = await createRoute.fetch(adminPost("/api/create", JSON.stringify({ name: "x" }), { "content-type": "text/plain" }));
    expect(text.status).toBe(400);
  });

  it("413 for a body over 64 KiB", async () => {
    const res = await create({ name: "x", description: "d".repeat(MAX_BODY_BYTES) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "payload_too_large" } });
  });

  it("405 with Allow for other methods", async () => {
    const res = await createRoute.fetch(new Request("https://gated.example.test/api/create", { method: "GET" }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });

  it("503 in bounded time when XMTP is unreachable, without calling the link service", async () => {
    t.network.down = true;
    const started = Date.now();
    const res = await create({ name: "x" });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await res.json()).toEqual({ error: { code: "unavailable", message: "The XMTP network is unavailable; try again in a moment" } });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(linkRequests).toHaveLength(0);
  });

  it("502 naming the group when the link service answers without an id; a retry with the same key finishes it", async () => {
    server.use(http.post(LINK_SERVICE_URL, () => HttpResponse.json({ link: "nope" })));
    const key = { "idempotency-key": "retry-key-0001" };
    const first = await create({ name: "Retry me" }, key);
    expect(first.status).toBe(502);
    const failed = (await first.json()) as { error: { code: string; groupId: string; message: string } };
    expect(failed.error.code).toBe("bad_gateway");
    expect(await t.app.registry.get(failed.error.groupId)).toMatchObject({ state: "pending-link" });

    server.use(linkServiceOk("later1"));
    const second = await create({ name: "Retry me" }, key);
    expect(second.status).toBe(201);
    const finished = (await second.json()) as { joinLinkId: string };
    expect(finished).toMatchObject({ groupId: failed.error.groupId, groupLinkId: "later1" });
    expect(t.network.groups.size).toBe(1);
    // The join link made during the failed attempt is the one answered now, not a second one.
    expect(await t.app.joinLinks.ensure(failed.error.groupId)).toEqual({ linkId: finished.joinLinkId, enabled: true });

    const third = await create({ name: "Retry me" }, key);
    expect(await third.json()).toMatchObject({ groupId: failed.error.groupId, groupLinkId: "later1" });
    expect(linkRequests).toHaveLength(1);
  });

  it.each([
    ["HTTP 500", () => new HttpResponse("oops", { status: 500 })],
    ["non-JSON", () => new HttpResponse("<html>", { status: 200, headers: { "content-type": "text/html" } })],
    ["network error", () => HttpResponse.error()],
  ])("502 when the link service fails with %s", async (_label, reply) => {
    server.use(http.post(LINK_SERVICE_URL, reply));
    const res = await create({ name: "x" });
    expect(res.status).toBe(502);
    const body = JSON.stringify(await res.json());
    expect(body).not.toMatch(/oops|html|stack/i);
  });

  it("409 when an Idempotency-Key is reused with another body; 400 when malformed", async () => {
    server.use(linkServiceOk("k1"));
    expect((await create({ name: "A" }, { "idempotency-key": "same-key-123" })).status).toBe(201);
    const conflict = await create({ name: "B" }, { "idempotency-key": "same-key-123" });
    expect(conflict.status).toBe(409);
    expect((await create({ name: "A" }, { "idempotency-key": "short" })).status).toBe(400);
  });

  it("frees the key when XMTP failed, so the retry creates the group", async () => {
    server.use(linkServiceOk("k2"));
    t.network.down = true;
    expect((await create({ name: "A" }, { "idempotency-key": "down-key-123" })).status).toBe(503);
    t.network.down = false;
    expect((await create({ name: "A" }, { "idempotency-key": "down-key-123" })).status).toBe(201);
  });
});
