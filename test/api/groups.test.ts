import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { setApp } from "../../lib/app.js";
import { webhookToken } from "../../lib/services/webhook-token.js";
import { startLocalServer } from "../../scripts/local-server.js";
import { linkServiceOk, useLinkServiceMock } from "../support/link-service-mock.js";
import { ADMIN_KEY, createTestApp, WEBHOOK_SECRET } from "../support/test-app.js";

// The operator endpoints over a real HTTP server (dynamic `[id]` routes), real Redis and the XMTP double.
useLinkServiceMock(linkServiceOk("ops1"));
const t = createTestApp();
let base: string;
let close: (this: void) => Promise<void>;
beforeAll(async () => {
  setApp(t.app);
  const server = await startLocalServer();
  base = server.url;
  close = () => server.close();
});
afterAll(async () => {
  setApp(undefined);
  await close();
});

const call = async (method: string, path: string, body?: unknown, auth = true) => {
  const res = await fetch(base + path, {
    method,
    headers: { ...(auth ? { authorization: `Bearer ${ADMIN_KEY}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase();
let groupId: string;

describe("operator API", () => {
  beforeAll(async () => {
    const created = await call("POST", "/api/create", { name: "Ops", description: "d" });
    groupId = created.body.groupId as string;
  });

  it("lists groups with member counts, paginated", async () => {
    const res = await call("GET", "/api/groups?limit=10");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 1, offset: 0, limit: 10, groups: [{ groupId, name: "Ops", memberCount: 0, url: "https://links.example.test/group/ops1" }] });
    expect((await call("GET", "/api/groups?limit=500")).status).toBe(400);
  });

  it("adds members as the operator with per-address results, and shows them with join times", async () => {
    const [a, b, ghost] = [wallet(), wallet(), wallet()];
    t.network.register(a);
    t.network.register(b);
    const res = await call("POST", `/api/groups/${groupId}/members`, { addresses: [a, b, ghost] });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      { address: a, result: "added" },
      { address: b, result: "added" },
      { address: ghost, result: "not-on-xmtp" },
    ]);
    expect((await call("POST", `/api/groups/${groupId}/members`, { addresses: [a] })).body.results).toEqual([{ address: a, result: "already-member" }]);
    const shown = await call("GET", `/api/groups/${groupId}`);
    const members = shown.body.members as { address: string; joinedAt: string | null; via: string | null; isAdmin: boolean }[];
    expect(members.find((m) => m.address === a)).toMatchObject({ via: "operator", isAdmin: false, joinedAt: expect.any(String) as string });
    expect(members.find((m) => m.isAdmin)).toBeDefined();
  });

  it("removes members, never the backend itself; reports not-a-member", async () => {
    const a = wallet();
    t.network.register(a);
    await call("POST", `/api/groups/${groupId}/members`, { addresses: [a] });
    const res = await call("DELETE", `/api/groups/${groupId}/members`, { addresses: [a, t.backendAddress] });
    expect(res.body.results).toEqual([
      { address: a, result: "removed" },
      { address: t.backendAddress, result: "not-a-member" },
    ]);
    expect(t.network.memberAddresses(groupId)).not.toContain(a);
    expect(t.network.memberAddresses(groupId)).toContain(t.backendAddress);
  });

  it("sends a message and lists it with the sender's address", async () => {
    const sent = await call("POST", `/api/groups/${groupId}/messages`, { text: "gm" });
    expect(sent.status).toBe(201);
    const listed = await call("GET", `/api/groups/${groupId}/messages?limit=5`);
    // Newest first; the earlier member changes are listed too, as the real client lists them (no text).
    const messages = listed.body.messages as { kind: string; text: string | null }[];
    expect(messages[0]).toEqual(expect.objectContaining({ id: sent.body.messageId, text: "gm", kind: "application", sender: t.backendAddress }));
    expect(messages.slice(1).every((m) => m.kind === "membership-change" && m.text === null)).toBe(true);
    expect((await call("POST", `/api/groups/${groupId}/messages`, { text: "" })).status).toBe(400);
    expect((await call("GET", `/api/groups/${groupId}/messages?before=yesterday`)).status).toBe(400);
  });

  it("shows the audit log newest first, including webhook joins", async () => {
    const a = wallet();
    t.network.register(a);
    await fetch(`${base}/api/webhook?token=${webhookToken(WEBHOOK_SECRET, groupId)}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ groupLinkId: "ops1", topic: groupId, walletAddress: a }),
    });
    const res = await call("GET", `/api/groups/${groupId}/audit?limit=2`);
    expect(res.status).toBe(200);
    expect((res.body.entries as unknown[])[0]).toMatchObject({ source: "webhook", action: "join", address: a, outcome: "added" });
  });

  it("updates name, description and rules (re-validated)", async () => {
    const res = await call("PATCH", `/api/groups/${groupId}`, { name: "Ops 2", rules: { type: "allowlist", addresses: [wallet()] } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: "Ops 2", rules: { type: "allowlist" } });
    expect(t.network.groups.get(groupId)?.info.name).toBe("Ops 2");
    expect((await call("PATCH", `/api/groups/${groupId}`, { rules: { type: "nope" } })).status).toBe(400);
    expect((await call("PATCH", `/api/groups/${groupId}`, {})).status).toBe(400);
    const tooLong = await call("PATCH", `/api/groups/${groupId}`, { name: "€".repeat(34) });
    expect(tooLong).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/100 bytes/) as unknown } } });
  });

  it("404 for a group this backend did not create, 400 for a malformed id, 401 without the key, 405 otherwise", async () => {
    expect((await call("GET", `/api/groups/${"ab".repeat(16)}`)).status).toBe(404);
    const foreign = await t.app.xmtp.withSession((s) => s.createGroup({ name: "not ours", description: "" }));
    expect((await call("POST", `/api/groups/${foreign.groupId}/messages`, { text: "hi" })).status).toBe(404);
    expect((await call("GET", "/api/groups/not-hex!")).status).toBe(400);
    expect((await call("GET", "/api/groups/%E0%A4%A")).status).toBe(400);
    expect((await call("GET", "/api/groups", undefined, false)).status).toBe(401);
    expect((await call("PUT", `/api/groups/${groupId}/audit`)).status).toBe(405);
    expect((await call("POST", `/api/groups/${groupId}/members`, { addresses: [] })).status).toBe(400);
    expect((await call("POST", `/api/groups/${groupId}/members`, { addresses: Array.from({ length: 51 }, wallet) })).status).toBe(400);
  });
});
