import { appLogger } from "../../../lib/app.js";
import { operatorApp } from "../../_operator.js";
import { defineRoute, groupIdFromPath, json, readJsonBody, readQuery } from "../../../lib/http/responses.js";
import { listMessages, sendMessage } from "../../../lib/use-cases/operator.js";
import { MessageSchema, MessagesQuerySchema, NoQuerySchema } from "../../../lib/http/request-schemas.js";

/** `POST /api/groups/:id/messages {text}` (send as the backend) and `GET …?limit&before` (recent messages). */
export default defineRoute(
  {
    async POST(request) {
      const { app, actor } = await operatorApp(request);
      readQuery(request, NoQuerySchema);
      const groupId = groupIdFromPath(request);
      const { text } = await readJsonBody(request, MessageSchema);
      return json(201, await sendMessage(app, groupId, text, actor));
    },
    async GET(request) {
      const { app } = await operatorApp(request);
      return json(200, await listMessages(app, groupIdFromPath(request), readQuery(request, MessagesQuerySchema)));
    },
  },
  { logger: appLogger },
);
