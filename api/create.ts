import { appLogger } from "../lib/app.js";
import { operatorApp } from "./_operator.js";
import { createGroup } from "../lib/use-cases/create-group.js";
import { previewRules } from "../lib/use-cases/preview-rules.js";
import { CreateGroupSchema, DryRunQuerySchema, readIdempotencyKey } from "../lib/http/request-schemas.js";
import { defineRoute, json, readJsonBody, readQuery } from "../lib/http/responses.js";

/**
 * `POST /api/create`: the operator creates a gated group and gets its link. With `?dryRun=1`, only the checks run:
 * `200 {rules, requirement}` (the rules as they would be stored, and in the join page's words), nothing created.
 */
export default defineRoute({
  async POST(request) {
    const { app } = await operatorApp(request);
    const { dryRun } = readQuery(request, DryRunQuerySchema);
    const idempotencyKey = readIdempotencyKey(request);
    const input = await readJsonBody(request, CreateGroupSchema);
    if (dryRun) return json(200, await previewRules(app, input.rules));
    return json(201, await createGroup(app, input, idempotencyKey));
  },
}, { logger: appLogger });
