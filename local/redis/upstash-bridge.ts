import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Redis as IORedis } from "ioredis";

/** An Upstash-REST-compatible HTTP front for a real redis-server. */
export interface UpstashBridge {
  readonly url: string;
  readonly token: string;
  /** Requests served so far, and their body bytes (benchmarks read these). */
  readonly stats: { requests: number; requestBytes: number; responseBytes: number; maxRequestBytes: number };
  close(): Promise<void>;
}

type Command = (string | number)[];
type Reply = Buffer | string | number | null | Reply[];

/**
 * Serves Upstash's REST protocol (POST `/` one command, `/pipeline`, `/multi-exec`; `Upstash-Encoding: base64`;
 * `{result}` / `{error}` bodies; HTTP 400 on a command error, 401 on a bad token) over a real Redis,
 * so the real `@upstash/redis` client can be used in tests.
 */
export async function startUpstashBridge(redisUrl: string, token = "test-token-" + Math.random().toString(36).slice(2)): Promise<UpstashBridge> {
  const redis = new IORedis(redisUrl, { maxRetriesPerRequest: 1 });
  const stats = { requests: 0, requestBytes: 0, responseBytes: 0, maxRequestBytes: 0 };

  const encode = (reply: Reply, base64: boolean): unknown => {
    if (Array.isArray(reply)) return reply.map((r) => encode(r, base64));
    if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
    if (reply === "OK") return "OK";
    // ioredis turns HGETALL's flat array into an object; Upstash answers the flat array.
    if (reply !== null && typeof reply === "object") {
      return Object.entries(reply as Record<string, Reply>).flatMap(([k, val]) => [encode(Buffer.from(k), base64), encode(val, base64)]);
    }
    if (typeof reply === "string") return base64 ? Buffer.from(reply).toString("base64") : reply;
    return reply;
  };
  const run = async (command: Command): Promise<Reply> => {
    const [name, ...args] = command;
    return (await redis.callBuffer(String(name), ...args.map(String))) as Reply;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    stats.requests++;
    stats.requestBytes += raw.length;
    stats.maxRequestBytes = Math.max(stats.maxRequestBytes, raw.length);
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      stats.responseBytes += Buffer.byteLength(text);
      res.writeHead(status, { "content-type": "application/json", "upstash-sync-token": "0" });
      res.end(text);
    };
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, { error: "Unauthorized" });
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return send(400, { error: "ERR failed to parse command" });
    }
    const path = (req.url ?? "/").split("?")[0]!.replace(/\/+$/, "");
    if (path === "" || path === "/") {
      if (!Array.isArray(body)) return send(400, { error: "ERR command must be an array" });
      try {
        return send(200, { result: encode(await run(body as Command), base64) });
      } catch (error) {
        return send(400, { error: (error as Error).message });
      }
    }
    if (path === "/pipeline") {
      const commands = body as Command[];
      const results = await Promise.all(
        commands.map(async (c) => {
          try {
            return { result: encode(await run(c), base64) };
          } catch (error) {
            return { error: (error as Error).message };
          }
        }),
      );
      return send(200, results);
    }
    if (path === "/multi-exec") {
      const commands = body as Command[];
      const tx = redis.multi();
      for (const [name, ...args] of commands) tx.callBuffer(String(name), ...args.map(String));
      const results = (await tx.exec()) ?? [];
      return send(
        200,
        results.map(([error, result]) => (error ? { error: error.message } : { result: encode(result as Reply, base64) })),
      );
    }
    return send(404, { error: "ERR unknown endpoint" });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("bridge did not bind");
  return {
    url: `http://127.0.0.1:${address.port}`,
    token,
    stats,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}
