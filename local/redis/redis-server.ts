import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { Redis as IORedis } from "ioredis";

/** A free TCP port on localhost. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** A running redis-server: ours (started on a free port) or the one `REDIS_URL` names. */
export interface RedisServer {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway `redis-server` (nothing saved to disk) on a free port,
 * or uses `REDIS_URL` when set. Fails with a readable message when redis-server is not installed.
 */
export async function startRedisServer(): Promise<RedisServer> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    throw new Error("redis-server is not installed (apt-get install redis-server), or set REDIS_URL", { cause: error });
  }
  await new Promise<void>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error("redis-server is not installed (apt-get install redis-server), or set REDIS_URL", { cause: error }));
    });
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new IORedis(url, { lazyConnect: true });
  await probe.connect();
  await probe.ping();
  probe.disconnect();
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
