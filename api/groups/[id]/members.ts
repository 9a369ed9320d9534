import { appLogger, getApp } from "../../../lib/app.js";
import { defineRoute, groupIdFromPath, json, readJsonBody, requireBearer } from "../../../lib/http.js";
import { addMembers, AddressesSchema, removeMembers } from "../../../lib/operator.js";

/** `POST` (add, rules bypassed) and `DELETE` (remove) `/api/groups/:id/members` with `{addresses:[…]}`. */
export default defineRoute(
  {
    async POST(request) {
      const app = getApp();
      requireBearer(request, app.config.adminApiKey);
      const groupId = groupIdFromPath(request);
      const { addresses } = await readJsonBody(request, AddressesSchema);
      return json(200, await addMembers(app, groupId, addresses));
    },
    async DELETE(request) {
      const app = getApp();
      requireBearer(request, app.config.adminApiKey);
      const groupId = groupIdFromPath(request);
      const { addresses } = await readJsonBody(request, AddressesSchema);
      return json(200, await removeMembers(app, groupId, addresses));
    },
  },
  { logger: appLogger },
);
