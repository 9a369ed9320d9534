import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateInboxId } from "@xmtp/node-sdk";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config.js";
import { createNodeSdkXmtp } from "../../lib/xmtp/node-sdk-adapter.js";
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
      const port = createNodeSdkXmtp(config.xmtp);
      const started = Date.now();
      const error: unknown = await port.withSession(async () => "unreachable").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(XmtpUnavailableError);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
