import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { setApp } from "../../lib/app.js";
import { runCli } from "../../scripts/groups-cli.js";
import { startLocalServer } from "../../scripts/local-server.js";
import { freePort } from "../../local/redis/redis-server.js";
import { linkServiceOk, useLinkServiceMock } from "../support/link-service-mock.js";
import { ADMIN_KEY, createTestApp } from "../support/test-app.js";

useLinkServiceMock(linkServiceOk("cli1"));
const t = createTestApp({ env: { CRON_SECRET: "cron-secret-0123456789abcdef" } });
let env: Record<string, string>;
let close: (this: void) => Promise<void>;
beforeAll(async () => {
  setApp(t.app);
  const server = await startLocalServer();
  close = () => server.close();
  env = { GROUPS_API_URL: server.url, ADMIN_API_KEY: ADMIN_KEY, CRON_SECRET: "cron-secret-0123456789abcdef" };
});
afterAll(async () => {
  setApp(undefined);
  await close();
});

const cli = async (args: string[], e: Record<string, string> = env) => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, e, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join("\n"), err: err.join("\n") };
};

describe("groups CLI against a running local server", () => {
  it("list, add, show, send, messages, audit, remove, reverify: tables by default, JSON with --json", async () => {
    const created = await fetch(`${env.GROUPS_API_URL}/api/create`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "CLI group" }),
    });
    const { groupId } = (await created.json()) as { groupId: string };
    const member = privateKeyToAccount(generatePrivateKey()).address.toLowerCase();
    t.network.register(member);

    const list = await cli(["list"]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/groupId\s+name\s+memberCount/);
    expect(list.out).toContain("CLI group");
    expect((await cli(["add", groupId, member])).out).toMatch(new RegExp(`${member}\\s+added`));
    expect((await cli(["show", groupId])).out).toMatch(new RegExp(`${member}\\s+\\S+\\s+operator`));
    expect((await cli(["send", groupId, "hello", "all"])).out).toMatch(/^sent [0-9a-f]+$/);
    expect((await cli(["messages", groupId])).out).toContain("hello all");
    expect((await cli(["audit", groupId])).out).toMatch(/operator\s+api-key\s+add/);
    const json = await cli(["list", "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({ total: 1 });
    expect((await cli(["remove", groupId, member])).out).toMatch(/removed/);
    expect((await cli(["reverify", "--dry-run"])).out).toMatch(/would remove:[\s\S]*would warn:[\s\S]*in grace 0/);

    const shown = (await cli(["show", groupId])).out;
    const joinUrl = /join page: (\S+)/.exec(shown)?.[1];
    expect(joinUrl).toMatch(/^https:\/\/gated\.example\.test\/join\/[\w-]{22}$/);
    const rotated = await cli(["link", groupId, "rotate"]);
    expect(rotated.code).toBe(0);
    expect(rotated.out).toMatch(/^join page: https:\/\/gated\.example\.test\/join\/[\w-]{22}$/);
    expect(rotated.out).not.toContain(joinUrl);
    expect((await cli(["link", groupId, "disable"])).out).toMatch(/\(disabled\)$/);
    expect((await cli(["link", groupId, "explode"])).code).toBe(2);
  });

  it("clear errors: bad key, unknown group, network, usage", async () => {
    const bad = await cli(["list"], { ...env, ADMIN_API_KEY: "wrong-key-wrong-key-wrong-key-000" });
    expect(bad).toMatchObject({ code: 1, err: "Not authorized: check ADMIN_API_KEY" });
    const unknown = await cli(["show", "ab".repeat(16)]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/^Not found:/);
    const down = await cli(["list"], { ...env, GROUPS_API_URL: `http://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/Could not reach/);
    expect((await cli(["frobnicate"])).code).toBe(2);
    expect((await cli(["add", "ab"])).err).toMatch(/needs at least one address/);
  });

  it("runs as its own process (npm run groups)", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/groups-cli.ts", "list"], { env: { ...process.env, ...env } });
    expect(stdout).toContain("CLI group");
  });
});
