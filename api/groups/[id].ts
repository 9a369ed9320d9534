import { appLogger } from "../../lib/app.js";
import { operatorApp } from "../_operator.js";
import { defineRoute, groupIdFromPath, json, readJsonBody, readQuery } from "../../lib/http/responses.js";
import { previewRules, showGroup, updateGroup } from "../../lib/use-cases/operator.js";
import { DryRunQuerySchema, GroupPatchSchema, NoQuerySchema } from "../../lib/http/request-schemas.js";
import { InvalidRequestError } from "../../lib/shared/errors.js";

/**
 * `GET /api/groups/:id` (one group and its members) and `PATCH /api/groups/:id` (name, description, rules;
 * `?dryRun=1`: who would lose access under the new rules, nothing changed).
 */
export default defineRoute(
  {
    async GET(request) {
      const { app } = await operatorApp(request);
      readQuery(request, NoQuerySchema);
      return json(200, await showGroup(app, groupIdFromPath(request)));
    },
    async PATCH(request) {
      const { app, actor } = await operatorApp(request);
      const { dryRun } = readQuery(request, DryRunQuerySchema);
      const groupId = groupIdFromPath(request);
      const patch = await readJsonBody(request, GroupPatchSchema);
      if (!dryRun) return json(200, await updateGroup(app, groupId, patch, actor));
      if (!patch.rules) throw new InvalidRequestError("dryRun previews a change of rules: send rules");
      return json(200, await previewRules(app, groupId, patch.rules));
    },
  },
  { logger: appLogger },
);
