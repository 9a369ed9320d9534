import { appLogger, getApp } from "../../lib/app.js";
import { clientIp, defineRoute, json, readJsonBody } from "../../lib/http/responses.js";
import { adminSession, signInAdmin, signOutAdmin } from "../../lib/use-cases/admin-sign-in.js";
import { SignedJoinSchema } from "../../lib/http/request-schemas.js";
import { clearedSessionCookie, requireSameOrigin, sessionCookie, sessionToken } from "../../lib/http/admin-auth.js";
import { UnauthorizedError } from "../../lib/shared/errors.js";

/**
 * The dashboard session: `POST {message, signature}` signs in (sets the cookie), `GET` says who is signed in,
 * `DELETE` signs out.
 */
export default defineRoute(
  {
    async POST(request) {
      const app = getApp();
      const body = await readJsonBody(request, SignedJoinSchema);
      const { token, session } = await signInAdmin(app, body, clientIp(request));
      return json(200, session, { "set-cookie": sessionCookie(token) });
    },
    async GET(request) {
      const app = getApp();
      const token = sessionToken(request);
      const session = token ? await adminSession(app, token) : null;
      if (!session) throw new UnauthorizedError("Not signed in");
      return json(200, session);
    },
    async DELETE(request) {
      const app = getApp();
      requireSameOrigin(request, app.config.publicUrl);
      const token = sessionToken(request);
      if (token) await signOutAdmin(app, token);
      return json(200, { signedOut: true }, { "set-cookie": clearedSessionCookie() });
    },
  },
  { logger: appLogger },
);
