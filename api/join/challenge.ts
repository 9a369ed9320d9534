import { appLogger, getApp } from "../../lib/app.js";
import { clientIp, defineRoute, json, readJsonBody } from "../../lib/http/responses.js";
import { issueChallenge } from "../../lib/use-cases/sign-in-join.js";
import { ChallengeRequestSchema } from "../../lib/http/request-schemas.js";

/** `POST /api/join/challenge {linkId, address, chainId}` → `{message, expiresAt}`: the sign-in message to sign. */
export default defineRoute(
  {
    async POST(request) {
      const app = getApp();
      const body = await readJsonBody(request, ChallengeRequestSchema);
      return json(200, await issueChallenge(app, body, clientIp(request)));
    },
  },
  { logger: appLogger },
);
