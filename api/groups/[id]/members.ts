import { appLogger } from "../../../lib/app.js";
import { operatorApp } from "../../_operator.js";
import { defineRoute, groupIdFromPath, json, readJsonBody, readQuery } from "../../../lib/http/responses.js";
import { addMembers, removeMembers } from "../../../lib/use-cases/operator.js";
import { AddressesSchema, NoQuerySchema } from "../../../lib/http/request-schemas.js";

/** `POST` (add, rules bypassed) and `DELETE` (remove) `/api/groups/:id/members` with `{addresses:[…]}`. */
export default defineRoute(
  {
    async POST(request) {
      const { app, actor } = await operatorApp(request);
      readQuery(request, NoQuerySchema);
      const groupId = groupIdFromPath(request);
      const { addresses } = await readJsonBody(request, AddressesSchema);
      return json(200, await addMembers(app, groupId, addresses, actor));
    },
    async DELETE(request) {
      const { app, actor } = await operatorApp(request);
      readQuery(request, NoQuerySchema);
      const groupId = groupIdFromPath(request);
      const { addresses } = await readJsonBody(request, AddressesSchema);
      return json(200, await removeMembers(app, groupId, addresses, actor));
    },
  },
  { logger: appLogger },
);
