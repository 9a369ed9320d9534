import { appLogger, getApp } from "../../lib/app.js";
import { clientIp, defineRoute, json, readJsonBody } from "../../lib/http/responses.js";
import { issueAdminChallenge } from "../../lib/use-cases/admin-sign-in.js";
import { AdminChallengeSchema } from "../../lib/http/request-schemas.js";

/** `POST /api/admin/challenge {address, chainId}` → `{message, expiresAt}`: the dashboard's sign-in message to sign. */
export default defineRoute(
  {
    async POST(request) {
      const app = getApp();
      const body = await readJsonBody(request, AdminChallengeSchema);
      return json(200, await issueAdminChallenge(app, body, clientIp(request)));
    },
  },
  { logger: appLogger },
);
