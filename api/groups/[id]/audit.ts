import { appLogger, getApp } from "../../../lib/app.js";
import { defineRoute, groupIdFromPath, json, readQuery, requireBearer } from "../../../lib/http.js";
import { groupAudit, PageSchema } from "../../../lib/operator.js";

/** `GET /api/groups/:id/audit?offset&limit`: join/leave decisions, newest first. */
export default defineRoute(
  {
    async GET(request) {
      const app = getApp();
      requireBearer(request, app.config.adminApiKey);
      return json(200, await groupAudit(app, groupIdFromPath(request), readQuery(request, PageSchema)));
    },
  },
  { logger: appLogger },
);
