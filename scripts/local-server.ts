import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import createRoute from "../api/create.js";
import reverifyRoute from "../api/cron/reverify.js";
import groupAuditRoute from "../api/groups/[id]/audit.js";
import groupMembersRoute from "../api/groups/[id]/members.js";
import groupMessagesRoute from "../api/groups/[id]/messages.js";
import groupRoute from "../api/groups/[id].js";
import groupsRoute from "../api/groups/index.js";
import webhookRoute from "../api/webhook.js";

type Route = { fetch: (request: Request) => Promise<Response> };

/** The functions as Vercel routes them (`api/<path>.ts` → `/api/<path>`, `[id]` a path segment). */
export const ROUTES: [RegExp, Route][] = [
  [/^\/api\/create$/, createRoute],
  [/^\/api\/webhook$/, webhookRoute],
  [/^\/api\/groups$/, groupsRoute],
  [/^\/api\/cron\/reverify$/, reverifyRoute],
  [/^\/api\/groups\/[^/]+$/, groupRoute],
  [/^\/api\/groups\/[^/]+\/members$/, groupMembersRoute],
  [/^\/api\/groups\/[^/]+\/messages$/, groupMessagesRoute],
  [/^\/api\/groups\/[^/]+\/audit$/, groupAuditRoute],
];

/** Serves the functions over plain HTTP, the way Vercel hands them web-standard Requests. */
export async function startLocalServer(port = 0, host = "127.0.0.1"): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "internal", message: "Internal error" } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("server did not bind");
  return {
    url: `http://${host}:${address.port}`,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
  const path = url.pathname.replace(/\/+$/, "");
  const route = ROUTES.find(([pattern]) => pattern.test(path))?.[1];
  if (!route) {
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "not_found", message: "No such endpoint" } }));
    return;
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) value.forEach((v) => headers.append(name, v));
    else if (value !== undefined) headers.set(name, value);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const request = new Request(url, {
    method: req.method ?? "GET",
    headers,
    ...(hasBody ? { body: Readable.toWeb(req), duplex: "half" } : {}),
  } as RequestInit);
  const response = await route.fetch(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
}
