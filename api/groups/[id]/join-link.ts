import { appLogger } from "../../../lib/app.js";
import { defineRoute, groupIdFromPath, json, readJsonBody, readQuery } from "../../../lib/http/responses.js";
import { changeJoinLink } from "../../../lib/use-cases/operator.js";
import { JoinLinkActionSchema, NoQuerySchema } from "../../../lib/http/request-schemas.js";
import { operatorApp } from "../../_operator.js";

/** `POST /api/groups/:id/join-link {action: "rotate" | "disable" | "enable"}`: manage the group's own join link. */
export default defineRoute(
  {
    async POST(request) {
      const { app, actor } = await operatorApp(request);
      readQuery(request, NoQuerySchema);
      const groupId = groupIdFromPath(request);
      const { action } = await readJsonBody(request, JoinLinkActionSchema);
      return json(200, await changeJoinLink(app, groupId, action, actor));
    },
  },
  { logger: appLogger },
);
