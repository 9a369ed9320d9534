import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateInboxId } from "@xmtp/node-sdk";
import { createClient as bindingCreateClient } from "@xmtp/node-bindings";
import { describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../lib/config.js";
import { silentLogger } from "../../lib/log.js";
import { createRedis } from "../../lib/redis.js";
import { createNodeSdkXmtp } from "../../lib/xmtp/node-sdk-adapter.js";
import { createDurableDatabase } from "../../lib/xmtp/state/durable-database.js";
import { XmtpUnavailableError } from "../../lib/xmtp/port.js";
import { ETHEREUM_IDENTIFIER } from "../../lib/xmtp/signer.js";
import { BACKEND_KEY, testEnv } from "../support/test-app.js";

describe("@xmtp/node-sdk and its native binding", () => {
  it("runs under Node 22 or newer", () => {
    expect(Number(process.versions.node.split(".")[0])).toBeGreaterThanOrEqual(22);
  });

  it("loads the native binding and derives an inbox id offline", () => {
    const id = generateInboxId({ identifier: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", identifierKind: ETHEREUM_IDENTIFIER });
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(generateInboxId({ identifier: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", identifierKind: ETHEREUM_IDENTIFIER })).toBe(id);
  });

  it("classifies the real client's failure to reach the network as XmtpUnavailableError, in bounded time", async () => {
    const dir = await mkdtemp(join(tmpdir(), "xmtp-test-"));
    try {
      // "local" points at localhost:5556, where nothing listens here: the binding's real transport error.
      const config = loadConfig(testEnv({ XMTP_ENV: "local", XMTP_DB_DIR: dir, XMTP_WALLET_KEY: BACKEND_KEY }));
      const port = createNodeSdkXmtp(config.xmtp, {
        redis: createRedis(config.redis, { plainResponses: true }),
        keyPrefix: config.redis.keyPrefix,
        logger: silentLogger,
      });
      const started = Date.now();
      const error: unknown = await port.withSession(async () => "unreachable").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(XmtpUnavailableError);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("persists libxmtp's real SQLCipher database with its salt; a fresh instance opens the restored copy", async () => {
    // The binding's own createClient creates and migrates the encrypted database before it needs the network
    // for the identity, so the real files can be made offline. Each "instance" has its own directory.
    const prefix = `xdb${Math.random().toString(36).slice(2)}`;
    const redis = createRedis(inject("upstash"), { plainResponses: true });
    const identifier = { identifier: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", identifierKind: ETHEREUM_IDENTIFIER };
    const open = (dbPath: string, key: Buffer) =>
      bindingCreateClient("http://localhost:5556", null, false, dbPath, generateInboxId(identifier), identifier, key, null, null, null, true, "test/1").then(
        () => "opened",
        (error: Error) => error.message,
      );
    const key = Buffer.alloc(32, 7);
    const dirs = [await mkdtemp(join(tmpdir(), "xmtp-a-")), await mkdtemp(join(tmpdir(), "xmtp-b-")), await mkdtemp(join(tmpdir(), "xmtp-c-"))];
    const noHandle = { release: async () => {}, discard: async () => {} };
    try {
      const instances = dirs.map((dir) => createDurableDatabase({ redis, keyPrefix: prefix, dbPath: join(dir, "x.db3") }));
      const first = await instances[0]!.run(noHandle, () => open(join(dirs[0]!, "x.db3"), key));
      expect(first).toMatch(/GetInboxIds/);
      const manifest = await instances[0]!.store.readManifest();
      expect(manifest?.files.map((f) => f.suffix).sort()).toEqual(["", ".sqlcipher_salt"]);

      // Restored from Redis, the database opens with its key and the client gets as far as the network again.
      const second = await instances[1]!.run(noHandle, () => open(join(dirs[1]!, "x.db3"), key));
      expect(second).toMatch(/GetInboxIds/);
      // With another key the same restored files do not open: the check above can tell the two apart.
      const wrongKey = await instances[2]!.run(noHandle, () => open(join(dirs[2]!, "x.db3"), Buffer.alloc(32, 8)));
      expect(wrongKey).not.toMatch(/GetInboxIds/);
    } finally {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
