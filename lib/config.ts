import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";

/** The XMTP networks this service can talk to. */
export type XmtpEnv = "local" | "dev" | "production";

/**
 * XMTP's two protocols: the centralized V3 backend, and the decentralized network (d14n: xmtpd nodes reached
 * through the app's own gateway service), which takes over when XMTP retires V3.
 */
export type XmtpProtocol = "v3" | "d14n";

/** Everything the service reads from its environment, validated and typed. */
export interface Config {
  readonly xmtp: {
    /** The backend wallet's private key (0x + 64 hex). */
    readonly walletKey: `0x${string}`;
    /** SQLCipher key for the local XMTP database (64 hex, no prefix). */
    readonly dbEncryptionKey: string;
    readonly env: XmtpEnv;
    /** Folder for the XMTP database; a function instance's only writable disk is its tmp dir. */
    readonly dbDir: string;
    readonly appVersion: string;
    /** The V3 API to use instead of the environment's own (a self-hosted or local node), or null. */
    readonly apiUrl: string | null;
    /**
     * The app's gateway service on the decentralized network (`XMTP_GATEWAY_HOST`), or null. Configuring it arms
     * the switch: the installation moves to d14n when V3 announces its retirement (or an operator says so).
     */
    readonly gatewayHost: string | null;
    /** Which protocol a deployment starts on before anything is recorded in Redis (`XMTP_NETWORK`, default v3). */
    readonly network: XmtpProtocol;
  };
  readonly redis: {
    readonly url: string;
    readonly token: string;
    /** Prepended to every key, so several deployments can share one database. */
    readonly keyPrefix: string;
  };
  readonly adminApiKey: string;
  /**
   * Who may sign in to the dashboard (`ADMIN_ADDRESSES`), lowercase. A plain address signs with its own key; an
   * `eip155:<chainId>:0x…` entry is a smart-contract wallet, checked (EIP-1271/6492) on that chain only.
   */
  readonly admins: readonly { readonly address: string; readonly contractChainId: number | null }[];
  readonly webhookSecret: string;
  /** This deployment's base URL, without a trailing slash. */
  readonly publicUrl: string;
  readonly eligibility: {
    /** Where holdings are read: the chains over JSON-RPC, or Airstack's API. */
    readonly provider: "onchain" | "airstack";
    /** JSON-RPC URL per chain id, from `RPC_URL_<chainId>`. */
    readonly rpcUrls: ReadonlyMap<number, string>;
    readonly airstackApiKey: string | null;
    readonly cacheTtlSeconds: number;
  };
  readonly rateLimits: {
    /** Webhook requests per wallet (default 5 a minute). */
    readonly perWallet: { readonly limit: number; readonly windowSeconds: number };
    /** Admissions per group that passed the rules, webhook and join page together (default 300 per 5 minutes: well under XMTP's 3,000 writes per 5 minutes per client). */
    readonly perGroup: { readonly limit: number; readonly windowSeconds: number };
    /** Join-page challenge and join requests per client IP, each endpoint counted apart (default 60 a minute). */
    readonly joinPerIp: { readonly limit: number; readonly windowSeconds: number };
    /** Join-page challenges per (address, IP) and signed joins per proven address, each counted apart (default 10 per 10 minutes). */
    readonly joinPerAddress: { readonly limit: number; readonly windowSeconds: number };
    /** Join page loads per client IP (default 600 a minute: a venue's shared Wi-Fi stays well under it). */
    readonly pagePerIp: { readonly limit: number; readonly windowSeconds: number };
  };
  readonly cronSecret: string | null;
  readonly reverify: {
    /** How long a member who no longer qualifies is warned before removal (`REVERIFY_GRACE_HOURS`, default 24; 0: removed at once). */
    readonly graceHours: number;
  };
  /** A Converse-compatible link service to register groups with, or null (the default): own join links only. */
  readonly linkService: {
    /** Where group links are registered. */
    readonly url: string;
    /** A group's link on that service is this plus its link id. */
    readonly baseUrl: string;
  } | null;
}

/** Thrown when the environment is missing a variable or holds a bad one. The message names variables, never values. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly variables: readonly string[];
  constructor(problems: readonly { variable: string; problem: string }[]) {
    super(`Invalid configuration: ${problems.map((p) => `${p.variable} ${p.problem}`).join("; ")}`);
    this.variables = problems.map((p) => p.variable);
  }
}

const SEED_LINK_SERVICE_URL = "https://backend-staging.converse.xyz/api/groups/create";
const SEED_LINK_BASE_URL = "https://preview.converse.xyz/group/";
const APP_VERSION = "xmtp-token-gated-groups/0.1.0";

// What each variable must look like. Config errors are built from these texts alone,
// so a rejected value can never leak into a log line or a response.
const PROBLEMS: Record<string, string> = {
  XMTP_WALLET_KEY: "must be 0x followed by 64 hex characters",
  XMTP_DB_ENCRYPTION_KEY: "must be 64 hex characters (32 bytes)",
  XMTP_ENV: "must be one of local, dev, production",
  XMTP_DB_DIR: "must be an absolute path",
  XMTP_API_URL: "must be an https URL (http only for localhost)",
  XMTP_GATEWAY_HOST: "must be an https URL (http only for localhost): the app's XMTP gateway service",
  XMTP_NETWORK: "must be v3 or d14n (d14n needs XMTP_GATEWAY_HOST)",
  UPSTASH_REDIS_REST_URL: "must be an http(s) URL (or set KV_REST_API_URL)",
  UPSTASH_REDIS_REST_TOKEN: "must be set (or set KV_REST_API_TOKEN)",
  KV_REST_API_URL: "must be an http(s) URL",
  KV_REST_API_TOKEN: "must be set",
  REDIS_KEY_PREFIX: "must be at most 64 characters of letters, digits, ':', '_' or '-'",
  ADMIN_API_KEY: "must be at least 32 characters",
  ADMIN_ADDRESSES: "must be a comma-separated list of 0x addresses, or eip155:<chainId>:0x… for a smart-contract wallet",
  WEBHOOK_SECRET: "must be at least 32 characters",
  PUBLIC_URL: "must be an https URL (http only for localhost) with no path, query or fragment",
  LINK_SERVICE_URL: "must be an https URL (http only for localhost)",
  LINK_BASE_URL: "must be an https URL (http only for localhost), and is required when LINK_SERVICE_URL is another service than the seed's",
  ELIGIBILITY_PROVIDER: "must be onchain or airstack",
  AIRSTACK_API_KEY: "must be set when ELIGIBILITY_PROVIDER is airstack",
  ELIGIBILITY_CACHE_TTL_SECONDS: "must be a whole number of seconds from 0 to 3600",
  RPC_URL: "must be an http(s) URL",
  WEBHOOK_RATE_LIMIT_PER_WALLET: "must be <count>/<seconds>, e.g. 5/60",
  WEBHOOK_RATE_LIMIT_PER_GROUP: "must be <count>/<seconds>, e.g. 300/300",
  JOIN_RATE_LIMIT_PER_IP: "must be <count>/<seconds>, e.g. 60/60",
  JOIN_RATE_LIMIT_PER_ADDRESS: "must be <count>/<seconds>, e.g. 10/600",
  JOIN_PAGE_RATE_LIMIT_PER_IP: "must be <count>/<seconds>, e.g. 600/60",
  CRON_SECRET: "must be at least 16 characters",
  REVERIFY_GRACE_HOURS: "must be a whole number of hours from 0 to 720",
};

const isLocalHost = (host: string): boolean =>
  host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host.endsWith(".localhost");

const webUrl = (name: string) =>
  v.pipe(
    v.string(PROBLEMS[name]),
    v.trim(),
    v.check((raw) => {
      try {
        const u = new URL(raw);
        return u.protocol === "https:" || (u.protocol === "http:" && isLocalHost(u.hostname));
      } catch {
        return false;
      }
    }, PROBLEMS[name]),
  );

const rateLimit = (name: string) =>
  v.pipe(
    v.string(),
    v.regex(/^\d{1,6}\/\d{1,6}$/, PROBLEMS[name]),
    v.transform((raw) => {
      const [limit, windowSeconds] = raw.split("/").map(Number);
      return { limit: limit!, windowSeconds: windowSeconds! };
    }),
    v.check((r) => r.limit > 0 && r.windowSeconds > 0, PROBLEMS[name]),
  );

// An unset variable and an empty one (as the Vercel dashboard can leave it) mean the same.
const optional = <T extends v.GenericSchema<string | undefined, unknown>>(schema: T) =>
  v.optional(v.pipe(v.string(), v.trim(), v.transform((s) => s || undefined), v.optional(schema)));

// A plain address, or CAIP-10 (`eip155:<chainId>:<address>`) for a smart-contract wallet on one chain.
const ADMIN_ENTRY = /^(?:eip155:(\d{1,12}):)?(0x[0-9a-fA-F]{40})$/;

const EnvSchema = v.object({
  XMTP_WALLET_KEY: v.pipe(v.string(PROBLEMS.XMTP_WALLET_KEY), v.trim(), v.regex(/^0x[0-9a-fA-F]{64}$/, PROBLEMS.XMTP_WALLET_KEY)),
  XMTP_DB_ENCRYPTION_KEY: v.pipe(
    v.string(PROBLEMS.XMTP_DB_ENCRYPTION_KEY),
    v.trim(),
    v.regex(/^(0x)?[0-9a-fA-F]{64}$/, PROBLEMS.XMTP_DB_ENCRYPTION_KEY),
  ),
  XMTP_ENV: v.picklist(["local", "dev", "production"], PROBLEMS.XMTP_ENV),
  XMTP_DB_DIR: optional(v.pipe(v.string(), v.check((p) => p.startsWith("/"), PROBLEMS.XMTP_DB_DIR))),
  XMTP_API_URL: optional(webUrl("XMTP_API_URL")),
  XMTP_GATEWAY_HOST: optional(webUrl("XMTP_GATEWAY_HOST")),
  XMTP_NETWORK: optional(v.picklist(["v3", "d14n"], PROBLEMS.XMTP_NETWORK)),
  UPSTASH_REDIS_REST_URL: optional(webUrl("UPSTASH_REDIS_REST_URL")),
  UPSTASH_REDIS_REST_TOKEN: optional(v.string()),
  KV_REST_API_URL: optional(webUrl("KV_REST_API_URL")),
  KV_REST_API_TOKEN: optional(v.string()),
  REDIS_KEY_PREFIX: optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9:_-]{1,64}$/, PROBLEMS.REDIS_KEY_PREFIX))),
  ADMIN_API_KEY: v.pipe(v.string(PROBLEMS.ADMIN_API_KEY), v.trim(), v.minLength(32, PROBLEMS.ADMIN_API_KEY)),
  ADMIN_ADDRESSES: optional(
    v.pipe(
      v.string(),
      v.transform((raw) => raw.split(/[\s,]+/).filter(Boolean)),
      v.check((list) => list.every((entry) => ADMIN_ENTRY.test(entry)), PROBLEMS.ADMIN_ADDRESSES),
      v.transform((list) =>
        list.map((entry) => {
          const m = ADMIN_ENTRY.exec(entry)!;
          return { address: m[2]!.toLowerCase(), contractChainId: m[1] ? Number(m[1]) : null };
        }),
      ),
    ),
  ),
  WEBHOOK_SECRET: v.pipe(v.string(PROBLEMS.WEBHOOK_SECRET), v.trim(), v.minLength(32, PROBLEMS.WEBHOOK_SECRET)),
  PUBLIC_URL: v.pipe(
    webUrl("PUBLIC_URL"),
    v.check((raw) => {
      const u = new URL(raw);
      return (u.pathname === "/" || u.pathname === "") && !u.search && !u.hash;
    }, PROBLEMS.PUBLIC_URL),
  ),
  LINK_SERVICE_URL: optional(webUrl("LINK_SERVICE_URL")),
  LINK_BASE_URL: optional(webUrl("LINK_BASE_URL")),
  WEBHOOK_RATE_LIMIT_PER_WALLET: optional(rateLimit("WEBHOOK_RATE_LIMIT_PER_WALLET")),
  WEBHOOK_RATE_LIMIT_PER_GROUP: optional(rateLimit("WEBHOOK_RATE_LIMIT_PER_GROUP")),
  JOIN_RATE_LIMIT_PER_IP: optional(rateLimit("JOIN_RATE_LIMIT_PER_IP")),
  JOIN_RATE_LIMIT_PER_ADDRESS: optional(rateLimit("JOIN_RATE_LIMIT_PER_ADDRESS")),
  JOIN_PAGE_RATE_LIMIT_PER_IP: optional(rateLimit("JOIN_PAGE_RATE_LIMIT_PER_IP")),
  CRON_SECRET: optional(v.pipe(v.string(), v.minLength(16, PROBLEMS.CRON_SECRET))),
  REVERIFY_GRACE_HOURS: optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, PROBLEMS.REVERIFY_GRACE_HOURS), v.transform(Number), v.maxValue(720, PROBLEMS.REVERIFY_GRACE_HOURS))),
  ELIGIBILITY_PROVIDER: optional(v.picklist(["onchain", "airstack"], PROBLEMS.ELIGIBILITY_PROVIDER)),
  AIRSTACK_API_KEY: optional(v.string()),
  ELIGIBILITY_CACHE_TTL_SECONDS: optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/, PROBLEMS.ELIGIBILITY_CACHE_TTL_SECONDS), v.transform(Number), v.maxValue(3600, PROBLEMS.ELIGIBILITY_CACHE_TTL_SECONDS))),
});

// RPC URLs are open-ended (one variable per chain), so they are read beside the schema.
const RPC_URL_VARIABLE = /^RPC_URL_(\d{1,12})$/;
function readRpcUrls(env: Record<string, string | undefined>, problems: { variable: string; problem: string }[]): Map<number, string> {
  const urls = new Map<number, string>();
  for (const [name, raw] of Object.entries(env)) {
    const match = RPC_URL_VARIABLE.exec(name);
    const value = raw?.trim();
    if (!match?.[1] || !value) continue;
    const parsed = v.safeParse(webUrl("RPC_URL"), value);
    if (parsed.success) urls.set(Number(match[1]), parsed.output);
    else problems.push({ variable: name, problem: PROBLEMS.RPC_URL! });
  }
  return urls;
}

/**
 * Validates an environment and returns the typed configuration.
 * @throws {ConfigError} naming every missing or malformed variable (never its value).
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = v.safeParse(EnvSchema, env);
  const problems: { variable: string; problem: string }[] = [];
  if (!parsed.success) {
    for (const issue of parsed.issues) {
      const key: unknown = issue.path?.[0]?.key;
      const variable = typeof key === "string" ? key : "environment";
      problems.push({ variable, problem: PROBLEMS[variable] ?? "is invalid" });
    }
    throw new ConfigError(dedupe(problems));
  }
  const e = parsed.output;
  const redisUrl = e.UPSTASH_REDIS_REST_URL ?? e.KV_REST_API_URL;
  const redisToken = e.UPSTASH_REDIS_REST_URL ? e.UPSTASH_REDIS_REST_TOKEN : e.KV_REST_API_TOKEN;
  if (!redisUrl) problems.push({ variable: "UPSTASH_REDIS_REST_URL", problem: PROBLEMS.UPSTASH_REDIS_REST_URL! });
  else if (!redisToken) {
    const variable = e.UPSTASH_REDIS_REST_URL ? "UPSTASH_REDIS_REST_TOKEN" : "KV_REST_API_TOKEN";
    problems.push({ variable, problem: PROBLEMS[variable]! });
  }
  const rpcUrls = readRpcUrls(env, problems);
  const provider = e.ELIGIBILITY_PROVIDER ?? "onchain";
  if (provider === "airstack" && !e.AIRSTACK_API_KEY) problems.push({ variable: "AIRSTACK_API_KEY", problem: PROBLEMS.AIRSTACK_API_KEY! });
  const linkBaseUrl = e.LINK_BASE_URL ?? (e.LINK_SERVICE_URL === SEED_LINK_SERVICE_URL ? SEED_LINK_BASE_URL : undefined);
  if (e.LINK_SERVICE_URL && !linkBaseUrl) problems.push({ variable: "LINK_BASE_URL", problem: PROBLEMS.LINK_BASE_URL! });
  if (e.XMTP_NETWORK === "d14n" && !e.XMTP_GATEWAY_HOST) problems.push({ variable: "XMTP_NETWORK", problem: PROBLEMS.XMTP_NETWORK! });
  if (problems.length > 0 || !redisUrl || !redisToken) throw new ConfigError(problems);

  return {
    xmtp: {
      walletKey: e.XMTP_WALLET_KEY as `0x${string}`,
      dbEncryptionKey: e.XMTP_DB_ENCRYPTION_KEY.replace(/^0x/, "").toLowerCase(),
      env: e.XMTP_ENV,
      dbDir: e.XMTP_DB_DIR ?? join(tmpdir(), "xmtp"),
      appVersion: APP_VERSION,
      apiUrl: e.XMTP_API_URL ? e.XMTP_API_URL.replace(/\/+$/, "") : null,
      gatewayHost: e.XMTP_GATEWAY_HOST ? e.XMTP_GATEWAY_HOST.replace(/\/+$/, "") : null,
      network: e.XMTP_NETWORK ?? "v3",
    },
    redis: { url: redisUrl.replace(/\/+$/, ""), token: redisToken, keyPrefix: e.REDIS_KEY_PREFIX ?? "tg" },
    adminApiKey: e.ADMIN_API_KEY,
    admins: e.ADMIN_ADDRESSES ?? [],
    webhookSecret: e.WEBHOOK_SECRET,
    publicUrl: new URL(e.PUBLIC_URL).origin,
    eligibility: {
      provider,
      rpcUrls,
      airstackApiKey: e.AIRSTACK_API_KEY ?? null,
      cacheTtlSeconds: e.ELIGIBILITY_CACHE_TTL_SECONDS ?? 60,
    },
    rateLimits: {
      perWallet: e.WEBHOOK_RATE_LIMIT_PER_WALLET ?? { limit: 5, windowSeconds: 60 },
      perGroup: e.WEBHOOK_RATE_LIMIT_PER_GROUP ?? { limit: 300, windowSeconds: 300 },
      // Generous per IP: at an event, a whole room may join from one Wi-Fi address.
      joinPerIp: e.JOIN_RATE_LIMIT_PER_IP ?? { limit: 60, windowSeconds: 60 },
      joinPerAddress: e.JOIN_RATE_LIMIT_PER_ADDRESS ?? { limit: 10, windowSeconds: 600 },
      pagePerIp: e.JOIN_PAGE_RATE_LIMIT_PER_IP ?? { limit: 600, windowSeconds: 60 },
    },
    cronSecret: e.CRON_SECRET ?? null,
    reverify: { graceHours: e.REVERIFY_GRACE_HOURS ?? 24 },
    // The seed's service is gone (2025): registering is opt-in, and every group has a join link of its own.
    linkService: e.LINK_SERVICE_URL && linkBaseUrl ? { url: e.LINK_SERVICE_URL, baseUrl: linkBaseUrl } : null,
  };
}

function dedupe(problems: { variable: string; problem: string }[]) {
  const seen = new Set<string>();
  return problems.filter((p) => (seen.has(p.variable) ? false : (seen.add(p.variable), true)));
}

let cached: Config | undefined;

/**
 * The process's configuration, read from `process.env` once.
 * @throws {ConfigError} when the environment is invalid.
 */
export function getConfig(): Config {
  cached ??= loadConfig(process.env);
  return cached;
}
