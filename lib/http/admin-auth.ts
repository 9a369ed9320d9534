import type { Config } from "../config.js";
import { ForbiddenError, UnauthorizedError } from "../shared/errors.js";
import { adminSession, type Actor } from "../use-cases/admin-sign-in.js";
import { ADMIN_SESSION_TTL_SECONDS, type AdminSessionStore } from "../stores/admin-sessions.js";
import { requireBearer } from "./responses.js";

/**
 * The dashboard's session cookie. `__Host-`: only ever set with Secure, for this host, on `/` (a sibling subdomain
 * cannot plant or shadow it).
 */
export const ADMIN_COOKIE = "__Host-tg_admin";

/** `Set-Cookie` for a new session: HttpOnly (no script reads it), Secure, SameSite=Strict (no cross-site request carries it). */
export const sessionCookie = (token: string): string =>
  `${ADMIN_COOKIE}=${token}; Path=/; Max-Age=${ADMIN_SESSION_TTL_SECONDS}; HttpOnly; Secure; SameSite=Strict`;

/** `Set-Cookie` that removes the session cookie (signing out). */
export const clearedSessionCookie = (): string => `${ADMIN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;

/** The session token the request's cookie carries, or null. */
export function sessionToken(request: Request): string | null {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [name, ...rest] = part.trim().split("=");
    const value = rest.join("=");
    if (name === ADMIN_COOKIE && /^[A-Za-z0-9_-]{43}$/.test(value)) return value;
  }
  return null;
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);

/**
 * Who may run an operator action: a script with `Authorization: Bearer <ADMIN_API_KEY>` ("api-key"), or a signed-in
 * admin (the session cookie). With the cookie, a request that changes anything must come from this deployment's own
 * origin: SameSite=Strict already keeps the cookie off cross-site requests, and the Origin check covers what it
 * does not (a same-site sibling host, an old browser).
 * @throws {UnauthorizedError} no credentials, a wrong key, or an ended session (401).
 * @throws {ForbiddenError} a session cookie on a request from another origin (403).
 */
export async function requireOperator(
  request: Request,
  app: { readonly config: Pick<Config, "adminApiKey" | "publicUrl" | "admins">; readonly adminSessions: AdminSessionStore },
): Promise<Actor> {
  if (request.headers.has("authorization")) {
    requireBearer(request, app.config.adminApiKey);
    return "api-key";
  }
  const token = sessionToken(request);
  if (!token) throw new UnauthorizedError("Missing or invalid bearer token");
  if (!SAFE_METHODS.has(request.method.toUpperCase())) requireSameOrigin(request, app.config.publicUrl);
  const session = await adminSession(app, token);
  if (!session) throw new UnauthorizedError("Your session has ended; sign in again");
  return session.address;
}

/**
 * Refuses a cookie-carrying change that does not come from this deployment's own origin (sign-out included).
 * @throws {ForbiddenError}
 */
export function requireSameOrigin(request: Request, publicUrl: string): void {
  if (request.headers.get("origin") !== publicUrl) throw new ForbiddenError("Cross-site request refused: changes are accepted only from this deployment's own pages");
}
