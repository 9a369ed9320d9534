import { appLogger } from "../lib/app.js";
import { operatorApp } from "./_operator.js";
import { defineRoute, json } from "../lib/http/responses.js";
import { deploymentStatus } from "../lib/use-cases/status.js";

/** `GET /api/status` (operator): XMTP network, chains with an RPC, the cron's last run. No secret is ever in it. */
export default defineRoute(
  {
    async GET(request) {
      const { app } = await operatorApp(request);
      return json(200, await deploymentStatus(app));
    },
  },
  { logger: appLogger },
);
