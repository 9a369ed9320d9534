import { http, HttpResponse, type HttpHandler } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll } from "vitest";
import { LINK_SERVICE_URL } from "./test-app.js";

/** Bodies the fake link service received. */
export const linkRequests: unknown[] = [];

/** The link service answering `{id}` like the live one did. */
export const linkServiceOk = (id = "link" + Math.random().toString(36).slice(2, 10)): HttpHandler =>
  http.post(LINK_SERVICE_URL, async ({ request }) => {
    linkRequests.push(await request.json());
    return HttpResponse.json({ id });
  });

/**
 * msw in front of the link service. Requests to localhost (the Redis bridge, our own server) pass;
 * anything else not handled fails the test.
 */
export function useLinkServiceMock(...handlers: HttpHandler[]) {
  const server = setupServer(...handlers);
  beforeAll(() =>
    server.listen({
      onUnhandledFrame({ frame, defaults }) {
        const data = frame.data as { request?: Request } | undefined;
        const host = data?.request ? new URL(data.request.url).hostname : "";
        if (host === "127.0.0.1" || host === "localhost") return;
        defaults.error();
      },
    }),
  );
  afterEach(() => {
    server.resetHandlers();
    linkRequests.length = 0;
  });
  afterAll(() => server.close());
  return server;
}
