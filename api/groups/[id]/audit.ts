import { appLogger } from "../../../lib/app.js";
import { operatorApp } from "../../_operator.js";
import { defineRoute, groupIdFromPath, json, readQuery } from "../../../lib/http.js";
import { groupAudit, PageSchema } from "../../../lib/operator.js";

/** `GET /api/groups/:id/audit?offset&limit`: join/leave decisions, newest first. */
export default defineRoute(
  {
    async GET(request) {
      const app = operatorApp(request);
      return json(200, await groupAudit(app, groupIdFromPath(request), readQuery(request, PageSchema)));
    },
  },
  { logger: appLogger },
);
