import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LOCAL_XMTP_PORT } from "./xmtp-node.js";

/** Where the node's URL is, for `env: "local"` clients. */
export const LOCAL_XMTP_URL = `http://localhost:${LOCAL_XMTP_PORT}`;

/** Where a node started by `npm run xmtp:node` writes its PID, so it can be stopped cleanly. */
export const pidFile = (port = LOCAL_XMTP_PORT): string => join(tmpdir(), `xmtp-local-node-${port}.pid`);

/**
 * A request to the node's control paths over HTTP/2 (`/health`, `/stats`, `/control`).
 * @throws when the node cannot be reached.
 */
export function nodeRequest<T>(path: string, options: { body?: unknown; url?: string; timeoutMs?: number } = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const session = connect(options.url ?? `http://127.0.0.1:${LOCAL_XMTP_PORT}`);
    const fail = (error: unknown) => {
      session.destroy();
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    session.on("error", fail);
    session.setTimeout(options.timeoutMs ?? 2000, () => fail(new Error("local XMTP node did not answer")));
    const request = session.request({ ":path": path, ":method": options.body === undefined ? "GET" : "POST", "content-type": "application/json" });
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (text += chunk));
    request.on("error", fail);
    request.on("end", () => {
      session.close();
      try {
        resolve(JSON.parse(text) as T);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    request.end(options.body === undefined ? undefined : JSON.stringify(options.body));
  });
}

/** A running node's health. */
export interface NodeHealth {
  readonly ok: true;
  readonly pid: number;
  readonly uptimeMs: number;
  readonly latencyMs: number;
  /** The d14n gateway's URL, or null when the node serves V3 only. */
  readonly gatewayUrl: string | null;
  readonly d14nCutover: boolean;
}

/** The node's health, or null when nothing (or something else) answers on its port. */
export async function nodeHealth(url?: string): Promise<NodeHealth | null> {
  try {
    const health = await nodeRequest<Partial<NodeHealth> & { ok?: unknown; pid: number; uptimeMs: number; latencyMs: number }>("/health", { ...(url ? { url } : {}), timeoutMs: 1000 });
    return health.ok === true
      ? { ok: true, pid: health.pid, uptimeMs: health.uptimeMs, latencyMs: health.latencyMs, gatewayUrl: health.gatewayUrl ?? null, d14nCutover: health.d14nCutover === true }
      : null;
  } catch {
    return null;
  }
}

/** A node this process can rely on: one already running (shared, left running) or one it started (stopped by `stop`). */
export interface NodeHandle {
  readonly url: string;
  /** The d14n gateway's URL. */
  readonly gatewayUrl: string;
  /** True when this call started the node. */
  readonly started: boolean;
  stop(): Promise<void>;
}

const CLI = fileURLToPath(new URL("../../scripts/xmtp-node.ts", import.meta.url));
const TSX = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));

/**
 * Uses the local node on port 5556 if one is healthy, otherwise starts one in a child process
 * (`scripts/xmtp-node.ts --d14n`, its gateway and node on free ports) with a bounded lifetime and waits until it answers.
 * @throws when it does not come up within 20 s (the port taken by something else, say), or the running one serves no d14n.
 */
export async function ensureLocalXmtpNode(options: { lifetimeMinutes?: number; latencyMs?: number } = {}): Promise<NodeHandle> {
  const running = await nodeHealth();
  if (running) {
    if (!running.gatewayUrl) throw new Error(`the local XMTP node on port ${LOCAL_XMTP_PORT} serves V3 only: stop it, or restart it with \`npm run xmtp:node -- --d14n\``);
    return { url: LOCAL_XMTP_URL, gatewayUrl: running.gatewayUrl, started: false, stop: async () => {} };
  }
  const child = spawn(TSX, [CLI, "--d14n", "--gateway-port", "0", "--node-port", "0", "--lifetime-minutes", String(options.lifetimeMinutes ?? 60), "--latency-ms", String(options.latencyMs ?? 0)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 20_000;
  let gatewayUrl: string | null;
  for (;;) {
    gatewayUrl = (await nodeHealth())?.gatewayUrl ?? null;
    if (gatewayUrl) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`local XMTP node did not start on port ${LOCAL_XMTP_PORT}: ${stderr.trim() || "no output"}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: LOCAL_XMTP_URL,
    gatewayUrl,
    started: true,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Records this process as the node's, for `--stop`. */
export async function writePidFile(port = LOCAL_XMTP_PORT): Promise<void> {
  await writeFile(pidFile(port), String(process.pid));
}

/** Removes the PID file if it names this process. */
export async function removePidFile(port = LOCAL_XMTP_PORT): Promise<void> {
  const pid = await readFile(pidFile(port), "utf8").catch(() => "");
  if (pid.trim() === String(process.pid)) await rm(pidFile(port), { force: true });
}

/** Stops the node recorded in the PID file (SIGTERM, then waits until its port is free). Returns whether one was running. */
export async function stopRecordedNode(port = LOCAL_XMTP_PORT): Promise<boolean> {
  const pid = Number((await readFile(pidFile(port), "utf8").catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    await rm(pidFile(port), { force: true });
    return false;
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await nodeHealth())) await new Promise((r) => setTimeout(r, 100));
  return true;
}
