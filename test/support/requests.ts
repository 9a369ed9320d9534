import { ADMIN_KEY } from "./test-app.js";

const BASE = "https://gated.example.test";

/** A POST to one of our endpoints with a JSON body (or raw text) and optional headers. */
export function post(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return new Request(BASE + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A POST as the operator. */
export function adminPost(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return post(path, body, { authorization: `Bearer ${ADMIN_KEY}`, ...headers });
}
