import { appLogger } from "../../lib/app.js";
import { operatorApp } from "../_operator.js";
import { defineRoute, json, readQuery } from "../../lib/http/responses.js";
import { listGroups } from "../../lib/use-cases/operator.js";
import { PageSchema } from "../../lib/http/request-schemas.js";

/** `GET /api/groups?offset&limit`: the groups this backend manages. */
export default defineRoute(
  {
    async GET(request) {
      const { app } = await operatorApp(request);
      return json(200, await listGroups(app, readQuery(request, PageSchema)));
    },
  },
  { logger: appLogger },
);
