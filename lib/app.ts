import { getConfig, type Config } from "./config.js";
import { createEligibilityService, type EligibilityService } from "./eligibility/service.js";
import { createAdmissionQueue, type AdmissionQueue } from "./stores/admission-queue.js";
import { createAuditLog, type AuditLog } from "./stores/audit-log.js";
import { createInboxCache, type InboxCache } from "./stores/inbox-cache.js";
import { createMemberStore, type MemberStore } from "./stores/members.js";
import { createJoinLinkStore, type JoinLinkStore } from "./stores/join-links.js";
import { createGroupRegistry, type GroupRegistry } from "./stores/registry.js";
import { createChallengeStore, type ChallengeStore } from "./stores/challenges.js";
import { createAdminSessionStore, type AdminSessionStore } from "./stores/admin-sessions.js";
import { createReverifyCursorStore, type ReverifyCursorStore } from "./stores/reverify-cursor.js";
import { createRemovalNoticeStore, type RemovalNoticeStore } from "./stores/removal-notices.js";
import { createSignatureVerifier, type SignatureVerifier } from "./services/signature-verifier.js";
import { createLinkService, type LinkService } from "./services/link-service.js";
import { createLogger, type Logger } from "./shared/log.js";
import { createRateLimiter, type RateLimiter } from "./stores/rate-limits.js";
import { createRedis, type Redis } from "./shared/redis.js";
import { lazyXmtpPort, type XmtpPort } from "./xmtp/port.js";

/** Everything a use case may need, built once per function instance. */
export interface App {
  readonly config: Config;
  readonly redis: Redis;
  readonly registry: GroupRegistry;
  readonly joinLinks: JoinLinkStore;
  readonly challenges: ChallengeStore;
  readonly adminChallenges: ChallengeStore;
  readonly adminSessions: AdminSessionStore;
  readonly signatures: SignatureVerifier;
  readonly audit: AuditLog;
  readonly members: MemberStore;
  readonly admissions: AdmissionQueue;
  readonly inboxes: InboxCache;
  readonly reverifyCursor: ReverifyCursorStore;
  /** Members warned by re-verification, and when they may be removed. */
  readonly notices: RemovalNoticeStore;
  readonly rateLimiter: RateLimiter;
  readonly eligibility: EligibilityService;
  readonly xmtp: XmtpPort;
  /** Null unless `LINK_SERVICE_URL` is set. */
  readonly linkService: LinkService | null;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** Parts a caller (tests, the dev server) may supply instead of the real ones. */
export interface AppOverrides {
  readonly redis?: Redis;
  readonly xmtp?: XmtpPort;
  readonly fetch?: typeof fetch;
  readonly logger?: Logger;
  readonly now?: () => Date;
}

/** Builds the application from a configuration; nothing connects until first used. */
export function createApp(config: Config, overrides: AppOverrides = {}): App {
  const redis = overrides.redis ?? createRedis(config.redis);
  const now = overrides.now ?? (() => new Date());
  return {
    config,
    redis,
    registry: createGroupRegistry(redis, config.redis.keyPrefix, now),
    joinLinks: createJoinLinkStore(redis, config.redis.keyPrefix),
    challenges: createChallengeStore(redis, config.redis.keyPrefix),
    adminChallenges: createChallengeStore(redis, `${config.redis.keyPrefix}:admin`),
    adminSessions: createAdminSessionStore(redis, config.redis.keyPrefix),
    signatures: createSignatureVerifier({ rpcUrls: config.eligibility.rpcUrls, ...(overrides.fetch ? { fetch: overrides.fetch } : {}) }),
    audit: createAuditLog(redis, config.redis.keyPrefix, now),
    members: createMemberStore(redis, config.redis.keyPrefix, now),
    admissions: createAdmissionQueue(redis, config.redis.keyPrefix, now),
    inboxes: createInboxCache(redis, config.redis.keyPrefix),
    reverifyCursor: createReverifyCursorStore(redis, config.redis.keyPrefix),
    notices: createRemovalNoticeStore(redis, config.redis.keyPrefix),
    rateLimiter: createRateLimiter(redis, config.redis.keyPrefix, config.rateLimits, () => now().getTime()),
    eligibility: createEligibilityService(config.eligibility, redis, config.redis.keyPrefix, overrides.fetch),
    xmtp:
      overrides.xmtp ??
      lazyXmtpPort(async () =>
        (await import("./xmtp/node-sdk-adapter.js")).createNodeSdkXmtp(config.xmtp, {
          redis: createRedis(config.redis, { plainResponses: true }),
          keyPrefix: config.redis.keyPrefix,
          logger: overrides.logger ?? createLogger(),
        }),
      ),
    linkService: config.linkService
      ? createLinkService({ url: config.linkService.url, ...(overrides.fetch ? { fetch: overrides.fetch } : {}) })
      : null,
    logger: overrides.logger ?? createLogger(),
    now,
  };
}

let current: App | undefined;

/**
 * The instance's application, built from `process.env` on first use.
 * @throws {import("./config.js").ConfigError} when the environment is invalid.
 */
export function getApp(): App {
  current ??= createApp(getConfig());
  return current;
}

/** Replaces the instance's application (tests and the local dev server); `undefined` resets it. */
export function setApp(app: App | undefined): void {
  current = app;
}

const fallbackLogger = createLogger();

/** The instance's logger, also when the application could not be built (bad configuration). */
export function appLogger(): Logger {
  return current?.logger ?? fallbackLogger;
}
