import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";

type Handler = { fetch: (request: Request) => Promise<Response> };

/** One function as Vercel routes it: the path pattern, and where it came from. */
export interface LocalRoute {
  /** The function's file under `api/`, e.g. `groups/[id]/members.ts`. */
  readonly file: string;
  readonly pattern: RegExp;
  readonly handler: Handler;
}

const API_DIR = fileURLToPath(new URL("../api/", import.meta.url));
const VERCEL_JSON = fileURLToPath(new URL("../vercel.json", import.meta.url));

/**
 * The functions Vercel would deploy, read from `api/` the way it routes them: `api/<path>.ts` → `/api/<path>`,
 * `index.ts` → its folder, `[id]` → one path segment, files and folders starting with `_` are not functions.
 * A static segment wins over a dynamic one (`/api/groups` is `groups/index.ts`, not `groups/[id].ts`).
 */
export async function loadRoutes(): Promise<LocalRoute[]> {
  const files = functionFiles(API_DIR);
  const routes = await Promise.all(
    files.map(async (file) => {
      const segments = file.replace(/\.ts$/, "").split("/");
      if (segments.at(-1) === "index") segments.pop();
      const pattern = new RegExp(`^/api${segments.map((seg) => "/" + (/^\[[^\]]+\]$/.test(seg) ? "[^/]+" : escape(seg))).join("")}$`);
      const handler = ((await import(pathToFileURL(join(API_DIR, file)).href)) as { default: Handler }).default;
      return { file, pattern, handler, dynamic: segments.filter((seg) => seg.startsWith("[")).length };
    }),
  );
  return routes.sort((x, y) => x.dynamic - y.dynamic || x.file.localeCompare(y.file)).map(({ file, pattern, handler }) => ({ file, pattern, handler }));
}

/** The files under `apiDir` that Vercel makes functions of (paths relative to it, `/`-separated): `.ts`, not `_…`. */
export function functionFiles(apiDir: string): string[] {
  return (readdirSync(apiDir, { recursive: true }) as string[])
    .map((f) => f.split("\\").join("/"))
    .filter((f) => f.endsWith(".ts") && !f.split("/").some((part) => part.startsWith("_")));
}

/** vercel.json's rewrites (`/join/:linkId` → `/api/join-page?linkId=:linkId`), as matchers. */
async function loadRewrites(): Promise<{ source: RegExp; names: string[]; destination: string }[]> {
  const config = JSON.parse(await readFile(VERCEL_JSON, "utf8")) as { rewrites?: { source: string; destination: string }[] };
  return (config.rewrites ?? []).map(({ source, destination }) => {
    const names: string[] = [];
    const pattern = source
      .split("/")
      .map((seg) => (seg.startsWith(":") ? (names.push(seg.slice(1)), "([^/]+)") : escape(seg)))
      .join("/");
    if (/[*()?+]/.test(source)) throw new Error(`vercel.json rewrite ${source}: the local server reads whole-segment :params only`);
    return { source: new RegExp(`^${pattern}$`), names, destination };
  });
}

/** A path segment as the client meant it; one with malformed escapes is kept as sent. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const PUBLIC_DIR = fileURLToPath(new URL("../public/", import.meta.url));
const STATIC_TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

/** Serves the functions over plain HTTP, the way Vercel hands them web-standard Requests. */
export async function startLocalServer(port = 0, host = "127.0.0.1"): Promise<{ url: string; server: Server; routes: LocalRoute[]; close(): Promise<void> }> {
  const routes = await loadRoutes();
  const rewrites = await loadRewrites();
  const server = createServer((req, res) => {
    serve(req, res, routes, rewrites).catch(() => {
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
    routes,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, routes: readonly LocalRoute[], rewrites: Awaited<ReturnType<typeof loadRewrites>>): Promise<void> {
  const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
  let path = url.pathname.replace(/\/+$/, "");
  if (await serveStatic(path, res)) return;
  // As Vercel does: functions first, then rewrites. A rewritten request runs the destination's function, keeps its
  // own path and gains the destination's query (each captured segment one encoded value).
  const rewrite = routes.some(({ pattern }) => pattern.test(path)) ? undefined : rewrites.find((r) => r.source.test(path));
  if (rewrite) {
    const match = rewrite.source.exec(path)!;
    const destination = new URL(rewrite.names.reduce((d, name, i) => d.replaceAll(`:${name}`, encodeURIComponent(decodeSegment(match[i + 1] ?? ""))), rewrite.destination), url);
    for (const [key, value] of destination.searchParams) url.searchParams.set(key, value);
    path = destination.pathname;
  }
  const route = routes.find(({ pattern }) => pattern.test(path))?.handler;
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
