import { appLogger } from "../lib/app.js";
import { defineRoute } from "../lib/http/responses.js";
import { ADMIN_PAGE_HEADERS, renderAdminPage } from "../lib/http/admin-page-html.js";

/** `GET /admin` (rewritten here by vercel.json): the dashboard's page; its script signs in and calls the operator API. */
export default defineRoute(
  {
    GET() {
      return Promise.resolve(new Response(renderAdminPage(), { status: 200, headers: ADMIN_PAGE_HEADERS }));
    },
  },
  { logger: appLogger },
);
