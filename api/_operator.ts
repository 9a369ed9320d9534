import { getApp, type App } from "../lib/app.js";
import { requireOperator } from "../lib/http/admin-auth.js";
import type { Actor } from "../lib/use-cases/admin-sign-in.js";

/**
 * The application and who is acting, once the request carries the operator's bearer token or a signed-in admin's
 * session (checked before anything else runs).
 * @throws {import("../lib/shared/errors.js").UnauthorizedError}
 * @throws {import("../lib/shared/errors.js").ForbiddenError} a session cookie on a cross-origin change.
 */
export async function operatorApp(request: Request): Promise<{ app: App; actor: Actor }> {
  const app = getApp();
  return { app, actor: await requireOperator(request, app) };
}
