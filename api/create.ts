import { appLogger } from "../lib/app.js";
import { operatorApp } from "./_operator.js";
import { createGroup } from "../lib/use-cases/create-group.js";
import { CreateGroupSchema, NoQuerySchema, readIdempotencyKey } from "../lib/http/request-schemas.js";
import { defineRoute, json, readJsonBody, readQuery } from "../lib/http/responses.js";

/** `POST /api/create`: the operator creates a gated group and gets its link. */
export default defineRoute({
  async POST(request) {
    const app = operatorApp(request);
    readQuery(request, NoQuerySchema);
    const idempotencyKey = readIdempotencyKey(request);
    const input = await readJsonBody(request, CreateGroupSchema);
    return json(201, await createGroup(app, input, idempotencyKey));
  },
}, { logger: appLogger });
