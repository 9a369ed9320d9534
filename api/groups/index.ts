import { appLogger, getApp } from "../../lib/app.js";
import { defineRoute, json, readQuery, requireBearer } from "../../lib/http.js";
import { listGroups, PageSchema } from "../../lib/operator.js";

/** `GET /api/groups?offset&limit`: the groups this backend manages. */
export default defineRoute(
  {
    async GET(request) {
      const app = getApp();
      requireBearer(request, app.config.adminApiKey);
      return json(200, await listGroups(app, readQuery(request, PageSchema)));
    },
  },
  { logger: appLogger },
);
