import { appLogger, getApp } from "../../lib/app.js";
import { UnauthorizedError } from "../../lib/shared/errors.js";
import { defineRoute, json, readQuery, requireBearer } from "../../lib/http/responses.js";
import { DryRunQuerySchema } from "../../lib/http/request-schemas.js";
import { reverifyMembers } from "../../lib/use-cases/reverify.js";

/** `GET /api/cron/reverify[?dryRun=1]`: run by Vercel Cron with `Authorization: Bearer <CRON_SECRET>`. */
export default defineRoute(
  {
    async GET(request) {
      const app = getApp();
      if (!app.config.cronSecret) {
        // Said to the operator in the log, not to whoever calls.
        app.logger.warn("cron_secret_missing", {});
        throw new UnauthorizedError("Missing or invalid bearer token");
      }
      requireBearer(request, app.config.cronSecret);
      const { dryRun } = readQuery(request, DryRunQuerySchema);
      return json(200, await reverifyMembers(app, { dryRun }));
    },
  },
  { logger: appLogger },
);
