import { afterEach, beforeEach, describe, expect, it } from "vitest";
import createRoute from "../../api/create.js";
import { setApp } from "../../lib/app.js";
import { MAX_RULE_LEAVES } from "../../lib/shared/rules.js";
import { adminPost } from "../support/requests.js";
import { createTestApp, type TestApp } from "../support/test-app.js";

let t: TestApp;
beforeEach(() => {
  t = createTestApp({ env: { RPC_URL_100: "http://127.0.0.1:9" } });
  setApp(t.app);
});
afterEach(() => setApp(undefined));

const token = "0x" + "ab".repeat(20);
const nest = (depth: number): unknown => (depth === 0 ? { type: "open" } : { all: [nest(depth - 1)] });

describe("rules validation at POST /api/create", () => {
  it.each([
    ["an unknown type", { type: "nft", contract: token }, /must be a rule/],
    ["a bad address", { type: "erc20", chainId: 100, token: "0x12", minBalance: "1" }, /rules\.token: must be 0x followed by 40 hex/],
    ["a negative amount", { type: "erc20", chainId: 100, token, minBalance: "-1" }, /minBalance must be a non-negative decimal/],
    ["a non-numeric amount", { type: "erc1155", chainId: 100, contract: token, tokenId: "1", minBalance: "lots" }, /minBalance must be a non-negative whole number/],
    ["a number instead of a string amount", { type: "erc20", chainId: 100, token, minBalance: 100 }, /minBalance must be a decimal string/],
    ["an unknown key", { type: "poap", eventId: 1, color: "red" }, /color/],
    ["a POAP chain without the contract", { type: "poap", eventId: 1, chainId: 8453 }, /POAP chainId must be 100/],
    ["too deep a tree", nest(5), /at most 4 deep/],
    ["too many leaves", { any: Array.from({ length: MAX_RULE_LEAVES + 1 }, () => ({ type: "open" })) }, /at most 32 rules/],
    ["an empty all", { all: [] }, /all must list at least one rule/],
    ["a chain without RPC", { type: "erc20", chainId: 8453, token, minBalance: "1" }, /RPC_URL_8453/],
  ])("400 for %s, with a readable message", async (_label, rules, message) => {
    const res = await createRoute.fetch(adminPost("/api/create", { name: "G", rules }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.message).toMatch(message);
    expect(t.network.sessions).toBe(0);
  });

  it("accepts the deepest and widest trees allowed", async () => {
    const { RulesSchema } = await import("../../lib/shared/rules.js");
    const v = await import("valibot");
    expect(v.safeParse(RulesSchema, nest(4)).success).toBe(true);
    expect(v.safeParse(RulesSchema, { any: Array.from({ length: MAX_RULE_LEAVES }, () => ({ type: "open" })) }).success).toBe(true);
  });
});
