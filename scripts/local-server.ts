import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import createRoute from "../api/create.js";
import reverifyRoute from "../api/cron/reverify.js";
import groupAuditRoute from "../api/groups/[id]/audit.js";
import groupMembersRoute from "../api/groups/[id]/members.js";
import groupMessagesRoute from "../api/groups/[id]/messages.js";
import groupRoute from "../api/groups/[id].js";
import groupsRoute from "../api/groups/index.js";
import groupJoinLinkRoute from "../api/groups/[id]/join-link.js";
import joinChallengeRoute from "../api/join/challenge.js";
import joinRoute from "../api/join/index.js";
import joinPageRoute from "../api/join-page.js";
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
  [/^\/api\/groups\/[^/]+\/join-link$/, groupJoinLinkRoute],
  [/^\/api\/join\/challenge$/, joinChallengeRoute],
  [/^\/api\/join$/, joinRoute],
  [/^\/api\/join-page$/, joinPageRoute],
  // vercel.json's rewrite: /join/<linkId> → /api/join-page?linkId=<linkId>
  [/^\/join\/[^/]+$/, joinPageRoute],
];

const PUBLIC_DIR = fileURLToPath(new URL("../public/", import.meta.url));
const STATIC_TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

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
  if (await serveStatic(path, res)) return;
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
  // As Vercel does: the client's address, set by the platform, never taken from the client.
  headers.set("x-forwarded-for", req.socket.remoteAddress ?? "");
  headers.delete("x-real-ip");
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

// Vercel serves public/ from its CDN before any function; only the join page's assets live there.
async function serveStatic(path: string, res: ServerResponse): Promise<boolean> {
  const match = /^\/assets\/([a-z0-9-]+\.(?:js|css))$/.exec(path);
  if (!match?.[1]) return false;
  let body: Buffer;
  try {
    body = await readFile(join(PUBLIC_DIR, "assets", match[1]));
  } catch {
    return false;
  }
  res.writeHead(200, { "content-type": STATIC_TYPES[extname(match[1])] ?? "application/octet-stream", "x-content-type-options": "nosniff" });
  res.end(body);
  return true;
}
