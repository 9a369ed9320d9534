import { appLogger, getApp } from "../../lib/app.js";
import { clientIp, defineRoute, json, readJsonBody } from "../../lib/http/responses.js";
import { joinWithSignature } from "../../lib/use-cases/sign-in-join.js";
import { SignedJoinSchema } from "../../lib/http/request-schemas.js";

/** `POST /api/join {message, signature}` → `{status: "SUCCESS", groupId, openUrl}` or `{status: "DENIED", reason}`. */
export default defineRoute(
  {
    async POST(request) {
      const app = getApp();
      const body = await readJsonBody(request, SignedJoinSchema);
      return json(200, await joinWithSignature(app, body, clientIp(request)));
    },
  },
  { logger: appLogger },
);
