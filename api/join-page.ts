import { appLogger, getApp } from "../lib/app.js";
import { defineRoute } from "../lib/http.js";
import { loadJoinPage } from "../lib/join/join-flow.js";
import { JOIN_PAGE_HEADERS, renderJoinPage } from "../lib/join/join-page-html.js";

/** `GET /join/<linkId>` (rewritten here by vercel.json): the group's join page, or a friendly 404 page. */
export default defineRoute(
  {
    async GET(request) {
      const view = await loadJoinPage(getApp(), _linkId(request));
      return new Response(renderJoinPage(view), { status: view.found ? 200 : 404, headers: JOIN_PAGE_HEADERS });
    },
  },
  { logger: appLogger },
);

// Vercel may hand over the original path (/join/<id>) or the rewritten one (?linkId=<id>): accept both.
function _linkId(request: Request): string {
  const url = new URL(request.url);
  return url.searchParams.get("linkId") ?? /^\/join\/([^/]+)\/?$/.exec(url.pathname)?.[1] ?? "";
}
