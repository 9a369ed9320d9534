import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";

/** An HTTP proxy in front of the Upstash bridge that can be cut, as if Redis became unreachable. */
export interface CuttableProxy {
  readonly url: string;
  /** From now on every connection is reset, the open ones included. */
  cut(): void;
  /**
   * The next request whose body matches reaches Redis (its command runs), but its reply is lost: the connection
   * is reset instead of answered, as when a response dies on the way back. Later requests pass.
   */
  loseNextReply(match: (body: string) => boolean): void;
  /** How many replies were lost so far. */
  readonly lostReplies: number;
  close(): Promise<void>;
}

/** Starts a proxy forwarding every request to `target` until {@link CuttableProxy.cut}. */
export async function startCuttableProxy(target: string): Promise<CuttableProxy> {
  let cut = false;
  let lose: ((body: string) => boolean) | undefined;
  let lostReplies = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    if (cut) return void req.socket.destroy();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const loseThis = lose?.(body.toString("utf8")) === true;
      if (loseThis) lose = undefined;
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k, v]) => typeof v === "string" && k !== "host" && k !== "content-length")) as Record<string, string>;
      fetch(target + (req.url ?? "/"), { method: req.method ?? "POST", headers, ...(chunks.length ? { body } : {}) })
        .then(async (upstream) => {
          if (cut) return void req.socket.destroy();
          if (loseThis) {
            await upstream.arrayBuffer();
            lostReplies++;
            return void req.socket.destroy();
          }
          res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
          res.end(Buffer.from(await upstream.arrayBuffer()));
        })
        .catch(() => req.socket.destroy());
    });
  });
  server.on("connection", (socket) => {
    if (cut) return void socket.destroy();
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("proxy did not bind");
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    loseNextReply(match) {
      lose = match;
    },
    get lostReplies() {
      return lostReplies;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
