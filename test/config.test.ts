import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../lib/config.js";

const valid = {
  XMTP_WALLET_KEY: "0x" + "ab".repeat(32),
  XMTP_DB_ENCRYPTION_KEY: "0x" + "CD".repeat(32),
  XMTP_ENV: "production",
  UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io/",
  UPSTASH_REDIS_REST_TOKEN: "upstash-token-value",
  ADMIN_API_KEY: "a".repeat(32),
  WEBHOOK_SECRET: "w".repeat(32),
  PUBLIC_URL: "https://gated.example.com/",
};

const problem = (env: Record<string, string | undefined>): ConfigError => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
};

describe("loadConfig", () => {
  it("reads a valid environment with defaults", () => {
    const config = loadConfig(valid);
    expect(config.xmtp).toMatchObject({ env: "production", dbEncryptionKey: "cd".repeat(32) });
    expect(config.redis).toEqual({ url: "https://eu1-example.upstash.io", token: "upstash-token-value", keyPrefix: "tg" });
    expect(config.publicUrl).toBe("https://gated.example.com");
    // The seed's link service is gone: no registration unless asked for.
    expect(config.linkService).toBeNull();
    expect(config.rateLimits.joinPerIp).toEqual({ limit: 60, windowSeconds: 60 });
    expect(config.rateLimits.joinPerAddress).toEqual({ limit: 10, windowSeconds: 600 });
  });

  it("reads ADMIN_ADDRESSES: plain addresses sign with their key, eip155:<chain>:<address> are wallet contracts on that chain", () => {
    expect(loadConfig(valid).admins).toEqual([]);
    const a = "0x" + "Aa".repeat(20);
    const b = "0x" + "bb".repeat(20);
    expect(loadConfig({ ...valid, ADMIN_ADDRESSES: ` ${a}, eip155:8453:${b}\n` }).admins).toEqual([
      { address: a.toLowerCase(), contractChainId: null },
      { address: b, contractChainId: 8453 },
    ]);
    for (const bad of ["0x1234", `${a};${b}`, `eip155::${b}`, `solana:1:${b}`]) {
      const error = problem({ ...valid, ADMIN_ADDRESSES: bad });
      expect(error.variables).toEqual(["ADMIN_ADDRESSES"]);
      expect(error.message).not.toContain(bad);
    }
  });

  it("registers with a link service only when LINK_SERVICE_URL is set, and then needs its link base", () => {
    const seed = loadConfig({ ...valid, LINK_SERVICE_URL: "https://backend-staging.converse.xyz/api/groups/create" });
    expect(seed.linkService).toEqual({
      url: "https://backend-staging.converse.xyz/api/groups/create",
      baseUrl: "https://preview.converse.xyz/group/",
    });
    expect(problem({ ...valid, LINK_SERVICE_URL: "https://links.example.com/api" }).variables).toEqual(["LINK_BASE_URL"]);
    const own = loadConfig({ ...valid, LINK_SERVICE_URL: "https://links.example.com/api", LINK_BASE_URL: "https://l.example.com/g/" });
    expect(own.linkService).toEqual({ url: "https://links.example.com/api", baseUrl: "https://l.example.com/g/" });
  });

  it("reads REVERIFY_GRACE_HOURS (default 24, 0 to 720), naming it and never its value when wrong", () => {
    expect(loadConfig(valid).reverify).toEqual({ graceHours: 24 });
    expect(loadConfig({ ...valid, REVERIFY_GRACE_HOURS: "0" }).reverify).toEqual({ graceHours: 0 });
    expect(loadConfig({ ...valid, REVERIFY_GRACE_HOURS: "720" }).reverify).toEqual({ graceHours: 720 });
    for (const bad of ["721", "-1", "1.5", "a day"]) {
      const error = problem({ ...valid, REVERIFY_GRACE_HOURS: bad });
      expect(error.variables).toEqual(["REVERIFY_GRACE_HOURS"]);
      expect(error.message).not.toContain(bad);
    }
  });

  it("reads the join page's rate limits", () => {
    const config = loadConfig({ ...valid, JOIN_RATE_LIMIT_PER_IP: "5/10", JOIN_RATE_LIMIT_PER_ADDRESS: "2/30" });
    expect(config.rateLimits.joinPerIp).toEqual({ limit: 5, windowSeconds: 10 });
    expect(config.rateLimits.joinPerAddress).toEqual({ limit: 2, windowSeconds: 30 });
    expect(problem({ ...valid, JOIN_RATE_LIMIT_PER_IP: "lots" }).variables).toEqual(["JOIN_RATE_LIMIT_PER_IP"]);
  });

  it("accepts Vercel Marketplace's KV_REST_API_* names", () => {
    const { UPSTASH_REDIS_REST_URL: _u, UPSTASH_REDIS_REST_TOKEN: _t, ...rest } = valid;
    const config = loadConfig({ ...rest, KV_REST_API_URL: "https://kv.example.com", KV_REST_API_TOKEN: "kv-token" });
    expect(config.redis).toMatchObject({ url: "https://kv.example.com", token: "kv-token" });
  });

  it.each([
    ["XMTP_WALLET_KEY", "0x1234"],
    ["XMTP_DB_ENCRYPTION_KEY", "zz".repeat(32)],
    ["XMTP_ENV", "staging"],
    ["ADMIN_API_KEY", "short-secret-value"],
    ["WEBHOOK_SECRET", "short"],
    ["PUBLIC_URL", "http://gated.example.com"],
    ["PUBLIC_URL", "https://gated.example.com/base"],
    ["LINK_SERVICE_URL", "ftp://links"],
    ["UPSTASH_REDIS_REST_URL", "not a url"],
  ])("names %s when it is bad, without echoing the value", (variable, value) => {
    const error = problem({ ...valid, [variable]: value });
    expect(error.variables).toContain(variable);
    expect(error.message).toContain(variable);
    expect(error.message).not.toContain(value);
  });

  it("names every missing variable", () => {
    const error = problem({});
    expect(error.variables).toEqual(
      expect.arrayContaining(["XMTP_WALLET_KEY", "XMTP_DB_ENCRYPTION_KEY", "XMTP_ENV", "ADMIN_API_KEY", "WEBHOOK_SECRET", "PUBLIC_URL"]),
    );
  });

  it("asks for a Redis URL and token when neither naming is present", () => {
    const { UPSTASH_REDIS_REST_URL: _u, UPSTASH_REDIS_REST_TOKEN: _t, ...rest } = valid;
    expect(problem(rest).variables).toEqual(["UPSTASH_REDIS_REST_URL"]);
    expect(problem({ ...rest, KV_REST_API_URL: "https://kv.example.com" }).variables).toEqual(["KV_REST_API_TOKEN"]);
  });

  it("allows http only for localhost", () => {
    expect(loadConfig({ ...valid, PUBLIC_URL: "http://localhost:3000" }).publicUrl).toBe("http://localhost:3000");
  });

  it("treats empty variables as unset (as the dashboard can leave them)", () => {
    expect(loadConfig({ ...valid, LINK_SERVICE_URL: "", REDIS_KEY_PREFIX: " " }).redis.keyPrefix).toBe("tg");
  });

  it("starts on V3 with no gateway; XMTP_GATEWAY_HOST arms the decentralized network, XMTP_NETWORK=d14n starts there", () => {
    expect(loadConfig(valid).xmtp).toMatchObject({ network: "v3", gatewayHost: null, apiUrl: null });
    const armed = loadConfig({ ...valid, XMTP_GATEWAY_HOST: "https://gateway.example.com/" });
    expect(armed.xmtp).toMatchObject({ network: "v3", gatewayHost: "https://gateway.example.com" });
    expect(loadConfig({ ...valid, XMTP_GATEWAY_HOST: "https://gateway.example.com", XMTP_NETWORK: "d14n" }).xmtp.network).toBe("d14n");
    expect(loadConfig({ ...valid, XMTP_API_URL: "http://localhost:5556" }).xmtp.apiUrl).toBe("http://localhost:5556");
  });

  it("refuses d14n without a gateway, an unknown network, and a gateway that is not https (or local http), naming only the variable", () => {
    expect(problem({ ...valid, XMTP_NETWORK: "d14n" }).variables).toEqual(["XMTP_NETWORK"]);
    expect(problem({ ...valid, XMTP_NETWORK: "v4" }).variables).toEqual(["XMTP_NETWORK"]);
    const secret = "http://gateway.internal.example:5050/?key=s3cret";
    const error = problem({ ...valid, XMTP_GATEWAY_HOST: secret });
    expect(error.variables).toEqual(["XMTP_GATEWAY_HOST"]);
    expect(error.message).not.toContain("s3cret");
    expect(problem({ ...valid, XMTP_API_URL: "ftp://node.example" }).variables).toEqual(["XMTP_API_URL"]);
  });
});
