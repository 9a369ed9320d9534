import { getApp, type App } from "../lib/app.js";
import { requireBearer } from "../lib/http/responses.js";

/**
 * The application, once the request carries the operator's bearer token (checked before anything else runs).
 * @throws {import("../lib/shared/errors.js").UnauthorizedError}
 */
export function operatorApp(request: Request): App {
  const app = getApp();
  requireBearer(request, app.config.adminApiKey);
  return app;
}
