import * as v from "valibot";
import { ConfigError } from "../config.js";
import {
  ConflictError,
  DependencyFailedError,
  DependencyUnavailableError,
  ForbiddenError,
  InvalidRequestError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnauthorizedError,
} from "../shared/errors.js";
import { createLogger, describeError, type Logger } from "../shared/log.js";
import { secretsEqual } from "../shared/secrets.js";

/** Largest JSON body any endpoint accepts. */
export const MAX_BODY_BYTES = 64 * 1024;

/** A JSON response with no-store caching (every answer here is per-request). */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
  });
}

/**
 * Reads a JSON body and validates it against `schema`.
 * @throws {InvalidRequestError} not JSON, wrong content type, or not matching the schema (400).
 * @throws {PayloadTooLargeError} over `limit` bytes (413).
 */
export async function readJsonBody<S extends v.GenericSchema>(
  request: Request,
  schema: S,
  limit = MAX_BODY_BYTES,
): Promise<v.InferOutput<S>> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type.trim())) {
    throw new InvalidRequestError("Content-Type must be application/json");
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) throw new PayloadTooLargeError(limit);
  const text = await readLimited(request, limit);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InvalidRequestError("Request body is not valid JSON");
  }
  return parseInput(schema, raw);
}

/**
 * Validates already-decoded input (a body, a query) against `schema`.
 * @throws {InvalidRequestError} listing each problem with its path.
 */
export function parseInput<S extends v.GenericSchema>(schema: S, raw: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, raw);
  if (result.success) return result.output;
  const issues = result.issues.map((issue) => ({
    path: v.getDotPath(issue) ?? "",
    message: issue.message,
  }));
  const first = issues[0];
  throw new InvalidRequestError(
    first ? `Invalid request: ${first.path ? `${first.path}: ` : ""}${first.message}` : "Invalid request",
    issues,
  );
}

async function readLimited(request: Request, limit: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new PayloadTooLargeError(limit);
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * Checks `Authorization: Bearer <secret>`.
 * @throws {UnauthorizedError} when missing or wrong.
 */
export function requireBearer(request: Request, secret: string): void {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1] || !secretsEqual(match[1], secret)) {
    throw new UnauthorizedError("Missing or invalid bearer token");
  }
}

/** How an endpoint shapes its error bodies. The link service only reads `status`/`reason`. */
export type ErrorShape = "default" | "link-service";

/** Turns any thrown value into a JSON response; 5xx bodies never carry internal detail. */
export function errorResponse(error: unknown, shape: ErrorShape, logger: Logger): Response {
  const { status, body, headers } = classify(error, logger);
  const payload = shape === "link-service" ? { status: "ERROR", reason: body.message, error: body } : { error: body };
  return json(status, payload, headers);
}

interface Classified {
  status: number;
  body: { code: string; message: string; issues?: readonly { path: string; message: string }[]; [k: string]: unknown };
  headers?: Record<string, string>;
}

function classify(error: unknown, logger: Logger): Classified {
  if (error instanceof InvalidRequestError) {
    return {
      status: 400,
      body: { code: "invalid_request", message: error.message, ...(error.issues.length ? { issues: error.issues } : {}) },
    };
  }
  if (error instanceof UnauthorizedError) return { status: 401, body: { code: "unauthorized", message: error.message } };
  if (error instanceof ForbiddenError) return { status: 403, body: { code: "forbidden", message: error.message } };
  if (error instanceof NotFoundError) return { status: 404, body: { code: "not_found", message: error.message } };
  if (error instanceof MethodNotAllowedError) {
    return { status: 405, body: { code: "method_not_allowed", message: error.message }, headers: { allow: error.allow.join(", ") } };
  }
  if (error instanceof ConflictError) {
    return {
      status: 409,
      body: { code: "conflict", message: error.message },
      ...(error.retryAfterSeconds ? { headers: { "retry-after": String(error.retryAfterSeconds) } } : {}),
    };
  }
  if (error instanceof RateLimitedError) {
    return { status: 429, body: { code: "rate_limited", message: error.message }, headers: { "retry-after": String(error.retryAfterSeconds) } };
  }
  if (error instanceof PayloadTooLargeError) return { status: 413, body: { code: "payload_too_large", message: error.message } };
  if (error instanceof DependencyFailedError) {
    logger.warn("dependency_failed", { error: describeError(error) });
    return { status: 502, body: { code: "bad_gateway", message: error.publicMessage, ...error.details } };
  }
  if (error instanceof DependencyUnavailableError) {
    logger.warn("dependency_unavailable", { error: describeError(error) });
    return {
      status: 503,
      body: { code: error.code, message: error.publicMessage },
      headers: { "retry-after": "5" },
    };
  }
  if (error instanceof ConfigError) {
    logger.error("config_invalid", { variables: error.variables });
    return { status: 500, body: { code: "misconfigured", message: "The service is not configured correctly" } };
  }
  logger.error("unexpected_error", { error: describeError(error) });
  return { status: 500, body: { code: "internal", message: "Internal error" } };
}

type Handler = (request: Request) => Promise<Response>;
type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

const defaultLogger = createLogger();

/**
 * Builds a Vercel function (`export default { fetch }`) from one handler per method:
 * other methods get 405 with `Allow`, and every error goes through `errorResponse`.
 */
export function defineRoute(
  handlers: Partial<Record<Method, Handler>>,
  options: { shape?: ErrorShape; logger?: () => Logger } = {},
): { fetch: (request: Request) => Promise<Response> } {
  const allow = Object.keys(handlers);
  const logger = options.logger ?? (() => defaultLogger);
  return {
    async fetch(request: Request): Promise<Response> {
      const handler = handlers[request.method.toUpperCase() as Method];
      try {
        if (!handler) throw new MethodNotAllowedError(allow);
        return await handler(request);
      } catch (error) {
        return errorResponse(error, options.shape ?? "default", logger());
      }
    },
  };
}

/**
 * Validates the URL's query string against `schema`.
 * @throws {InvalidRequestError}
 */
export function readQuery<S extends v.GenericSchema>(request: Request, schema: S): v.InferOutput<S> {
  return parseInput(schema, Object.fromEntries(new URL(request.url).searchParams));
}

/**
 * The group id in `/api/groups/<id>[/…]` (Vercel hands web handlers the original URL).
 * @throws {InvalidRequestError} when it is not a group id.
 */
export function groupIdFromPath(request: Request): string {
  const match = /\/api\/groups\/([^/?#]+)/.exec(new URL(request.url).pathname);
  // Hex needs no decoding; anything percent-encoded is simply not a group id (and must not reach decodeURIComponent's URIError).
  const id = (match?.[1] ?? "").toLowerCase();
  if (!/^[0-9a-f]{1,128}$/.test(id)) throw new InvalidRequestError("The group id in the path must be hex");
  return id;
}

/**
 * The caller's IP for rate limits: Vercel sets `x-real-ip` and `x-forwarded-for` itself (a client
 * cannot forge them there); the local server sets them from the socket. Anything odd counts as "unknown".
 */
export function clientIp(request: Request): string {
  const raw = request.headers.get("x-real-ip") ?? request.headers.get("x-forwarded-for")?.split(",")[0] ?? "";
  const ip = raw.trim();
  return /^[0-9a-fA-F:.]{2,45}$/.test(ip) ? ip.toLowerCase() : "unknown";
}
