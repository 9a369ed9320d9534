import { appLogger } from "../../../lib/app.js";
import { operatorApp } from "../../_operator.js";
import { defineRoute, groupIdFromPath, json, readQuery } from "../../../lib/http/responses.js";
import { groupAudit } from "../../../lib/use-cases/operator.js";
import { AuditQuerySchema } from "../../../lib/http/request-schemas.js";

/** `GET /api/groups/:id/audit?offset&limit&type`: join/leave decisions (changes, denials, or all), newest first. */
export default defineRoute(
  {
    async GET(request) {
      const { app } = await operatorApp(request);
      return json(200, await groupAudit(app, groupIdFromPath(request), readQuery(request, AuditQuerySchema)));
    },
  },
  { logger: appLogger },
);
