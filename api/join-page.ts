import { appLogger, getApp } from "../lib/app.js";
import { clientIp, defineRoute } from "../lib/http/responses.js";
import { loadJoinPage } from "../lib/use-cases/sign-in-join.js";
import { JOIN_PAGE_HEADERS, joinPageStatus, renderJoinPage } from "../lib/http/join-page-html.js";

/** `GET /join/<linkId>` (rewritten here by vercel.json): the group's join page, or a friendly 404 page. */
export default defineRoute(
  {
    async GET(request) {
      const view = await loadJoinPage(getApp(), _linkId(request), clientIp(request));
      const retryAfter = "busy" in view ? { "retry-after": String(view.retryAfterSeconds) } : {};
      return new Response(renderJoinPage(view), { status: joinPageStatus(view), headers: { ...JOIN_PAGE_HEADERS, ...retryAfter } });
    },
  },
  { logger: appLogger },
);

// Vercel may hand over the original path (/join/<id>) or the rewritten one (?linkId=<id>): accept both.
function _linkId(request: Request): string {
  const url = new URL(request.url);
  return url.searchParams.get("linkId") ?? /^\/join\/([^/]+)\/?$/.exec(url.pathname)?.[1] ?? "";
}
