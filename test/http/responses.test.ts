import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/config.js";
import { defineRoute, json, MAX_BODY_BYTES, readJsonBody } from "../../lib/http/responses.js";
import { createLogger } from "../../lib/shared/log.js";

const lines: string[] = [];
const logger = createLogger((_level, line) => lines.push(line));
const echo = defineRoute({ POST: async (req) => json(200, await readJsonBody(req, v.object({ a: v.number() }))) }, { logger: () => logger });

const streamed = (bytes: number) =>
  new Request("https://x.test/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"a":1,"pad":"' + "x".repeat(bytes) + '"}'));
        c.close();
      },
    }),
    duplex: "half",
  } as RequestInit);

describe("defineRoute and readJsonBody", () => {
  it("accepts application/json with a charset and +json types", async () => {
    for (const type of ["application/json; charset=utf-8", "application/merge-patch+json"]) {
      const res = await echo.fetch(new Request("https://x.test/", { method: "POST", headers: { "content-type": type }, body: '{"a":1}' }));
      expect(res.status).toBe(200);
    }
  });

  it("413 for a streamed body over the limit even without Content-Length", async () => {
    const res = await echo.fetch(streamed(MAX_BODY_BYTES));
    expect(res.status).toBe(413);
  });

  it("400 with the path of each schema problem", async () => {
    const res = await echo.fetch(new Request("https://x.test/", { method: "POST", headers: { "content-type": "application/json" }, body: '{"a":"1"}' }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { issues: { path: string }[] } };
    expect(body.error.issues[0]?.path).toBe("a");
  });

  it("500 without internal detail for unexpected errors; the log has the error, not secrets", async () => {
    const route = defineRoute(
      {
        GET: () => {
          throw new Error("boom at /srv/internal.ts", { cause: new Error("inner") });
        },
      },
      { logger: () => logger },
    );
    const res = await route.fetch(new Request("https://x.test/"));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).toBe(JSON.stringify({ error: { code: "internal", message: "Internal error" } }));
    expect(lines.at(-1)).toContain("boom");
  });

  it("500 'misconfigured' for a bad environment, naming variables only in the log", async () => {
    const route = defineRoute({ GET: () => Promise.reject(new ConfigError([{ variable: "ADMIN_API_KEY", problem: "must be long" }])) }, { logger: () => logger });
    const res = await route.fetch(new Request("https://x.test/"));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: "misconfigured", message: "The service is not configured correctly" } });
    expect(lines.at(-1)).toContain("ADMIN_API_KEY");
  });
});

describe("logger", () => {
  it("redacts secret-looking fields and serializes bigints", () => {
    const out: string[] = [];
    createLogger((_l, line) => out.push(line)).info("e", { apiKey: "sekrit", token: "t0k", n: 10n, ok: "visible" });
    expect(out[0]).not.toMatch(/sekrit|t0k/);
    expect(JSON.parse(out[0]!)).toMatchObject({ apiKey: "[redacted]", n: "10", ok: "visible" });
  });
});
