import { appLogger, getApp } from "../lib/app.js";
import { handleWebhookJoin } from "../lib/use-cases/webhook-join.js";
import { WebhookJoinSchema } from "../lib/http/request-schemas.js";
import { defineRoute, json, readJsonBody } from "../lib/http/responses.js";

/** `POST /api/webhook?token=…`: the link service asks whether a wallet may join. */
export default defineRoute(
  {
    async POST(request) {
      const app = getApp();
      const token = new URL(request.url).searchParams.get("token");
      const body = await readJsonBody(request, WebhookJoinSchema);
      return json(200, await handleWebhookJoin(app, body, token));
    },
  },
  { shape: "link-service", logger: appLogger },
);
