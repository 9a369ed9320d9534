import { appLogger } from "../../lib/app.js";
import { operatorApp } from "../_operator.js";
import { defineRoute, groupIdFromPath, json, readJsonBody } from "../../lib/http/responses.js";
import { showGroup, updateGroup } from "../../lib/use-cases/operator.js";
import { GroupPatchSchema } from "../../lib/http/request-schemas.js";

/** `GET /api/groups/:id` (one group and its members) and `PATCH /api/groups/:id` (name, description, rules). */
export default defineRoute(
  {
    async GET(request) {
      const { app } = await operatorApp(request);
      return json(200, await showGroup(app, groupIdFromPath(request)));
    },
    async PATCH(request) {
      const { app, actor } = await operatorApp(request);
      const groupId = groupIdFromPath(request);
      return json(200, await updateGroup(app, groupId, await readJsonBody(request, GroupPatchSchema), actor));
    },
  },
  { logger: appLogger },
);
