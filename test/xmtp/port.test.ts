import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import {
  lazyXmtpPort,
  toXmtpError,
  withErrorMapping,
  XmtpGroupNotFoundError,
  XmtpOperationError,
  XmtpUnavailableError,
  type XmtpPort,
  type XmtpSession,
} from "../../lib/xmtp/port.js";
import { bindingError } from "../support/fake-xmtp.js";
import { LocalStorageError } from "../../lib/shared/errors.js";
import { testEnv } from "../support/test-app.js";

// Every implementation of the seam (the node-sdk adapter, the double) classifies errors through this wrapper.
describe("withErrorMapping", () => {
  const failing = (error: Error) =>
    withErrorMapping({
      inboxId: "inbox",
      installationId: "inst",
      listMembers: () => Promise.reject(error),
    } as unknown as XmtpSession);

  it("keeps the identity fields and turns the binding's transport errors into XmtpUnavailableError", async () => {
    const session = failing(bindingError('api client error … has error status: \'The service is currently unavailable\', self: "tcp connect error"'));
    expect(session.inboxId).toBe("inbox");
    expect(session.installationId).toBe("inst");
    await expect(session.listMembers("ab")).rejects.toBeInstanceOf(XmtpUnavailableError);
  });

  it("turns other failures into XmtpOperationError and lets our own errors through", async () => {
    await expect(failing(bindingError("Group error: Missing identity update")).listMembers("ab")).rejects.toBeInstanceOf(XmtpOperationError);
    const notFound = new XmtpGroupNotFoundError("ab");
    await expect(failing(notFound).listMembers("ab")).rejects.toBe(notFound);
  });
});

describe("toXmtpError", () => {
  const summary = bindingError("=== Errors Occured During Sync ===\n1 errors publishing intents\nprocessed 0 total messages, \n===\n");

  it("takes a sync summary from a write that waited for its intent as a refusal (its intent ended in Error), from a sync as retryable", () => {
    expect(toXmtpError(summary, "addMembers")).toBeInstanceOf(XmtpOperationError);
    expect(toXmtpError(summary, "sendText")).toBeInstanceOf(XmtpOperationError);
    expect(toXmtpError(summary, "listMembers")).toBeInstanceOf(XmtpUnavailableError);
    expect(toXmtpError(summary, "publishGroup")).toBeInstanceOf(XmtpUnavailableError);
    // A commit whose outcome is unknown stays retryable.
    expect(toXmtpError(bindingError("Sync failed to wait for intent"), "addMembers")).toBeInstanceOf(XmtpUnavailableError);
  });

  it("takes this instance's disk failing as a local storage failure (503), not a refusal", () => {
    expect(toXmtpError(bindingError("Storage error: database or disk is full"), "addMembers")).toBeInstanceOf(LocalStorageError);
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, mkdir '/tmp/x'"), { code: "ENOSPC" });
    expect(toXmtpError(enospc, "client start")).toBeInstanceOf(LocalStorageError);
    expect(toXmtpError(Object.assign(new Error("connect"), { code: "ECONNREFUSED" }), "client start")).toBeInstanceOf(XmtpOperationError);
  });
});

describe("lazyXmtpPort", () => {
  const session = { inboxId: "inbox" } as unknown as XmtpSession;
  const real: XmtpPort = { withSession: (work) => work(session), lookupInboxId: async () => null, inboxAddresses: async () => [] };

  it("loads nothing until the first session, then once for concurrent callers", async () => {
    let loads = 0;
    const port = lazyXmtpPort(async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return real;
    });
    expect(loads).toBe(0);
    const ids = await Promise.all([1, 2, 3].map(() => port.withSession(async (s) => s.inboxId)));
    expect(ids).toEqual(["inbox", "inbox", "inbox"]);
    expect(loads).toBe(1);
  });

  it("tries the load again after it failed", async () => {
    let loads = 0;
    const port = lazyXmtpPort(async () => {
      if (++loads === 1) throw new Error("binding missing");
      return real;
    });
    await expect(port.withSession(async (s) => s.inboxId)).rejects.toThrow("binding missing");
    expect(await port.withSession(async (s) => s.inboxId)).toBe("inbox");
    expect(loads).toBe(2);
  });
});

describe("the composed application", () => {
  it("does not load the native XMTP binding until a request needs XMTP (join page cold starts)", async () => {
    // A fresh process: build the app from a valid environment, then list the shared objects it loaded.
    const script = `
      import { createApp } from "./lib/app.ts";
      import { loadConfig } from "./lib/config.ts";
      createApp(loadConfig(JSON.parse(process.env.TEST_APP_ENV)));
      const loaded = process.report.getReport().sharedObjects.filter((s) => s.includes("bindings_node"));
      console.log(JSON.stringify(loaded));
    `;
    const env = { ...testEnv(), XMTP_ENV: "local" };
    const { stdout } = await promisify(execFile)(join(process.cwd(), "node_modules", ".bin", "tsx"), ["--input-type=module", "-e", script], {
      env: { ...process.env, TEST_APP_ENV: JSON.stringify(env) },
    });
    expect(JSON.parse(stdout.trim().split("\n").at(-1)!)).toEqual([]);
  });
});
