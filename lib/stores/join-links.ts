import { randomBytes } from "node:crypto";
import * as v from "valibot";
import { CorruptStateError } from "../shared/errors.js";
import type { Redis } from "../shared/redis.js";
import { storeCall } from "../shared/redis.js";

/** A group's own join link: `${PUBLIC_URL}/join/<linkId>`. */
export interface JoinLink {
  readonly linkId: string;
  readonly enabled: boolean;
}

/** Shape of a join link id: 22 base64url characters (128 random bits), nothing else is ever looked up. */
export const JOIN_LINK_ID = /^[A-Za-z0-9_-]{22}$/;

/** The groups' own join links, kept apart from the group record so that no record rewrite can lose one. */
export interface JoinLinkStore {
  /** The group's link, created on first call (existing groups get one the first time anyone asks). */
  ensure(groupId: string): Promise<JoinLink>;
  /** The group behind a link, or null when the link is unknown, replaced or malformed. */
  resolve(linkId: string): Promise<{ groupId: string; enabled: boolean } | null>;
  /** Replaces the group's link with a new one; the old one stops working at once. */
  rotate(groupId: string): Promise<JoinLink>;
  /** Turns the group's link off or on again (same id). */
  setEnabled(groupId: string, enabled: boolean): Promise<JoinLink>;
}

// byGroup holds "<linkId> <1|0>"; byLink holds the group id. Both change in one step.
const ENSURE = `
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1] .. ' 1')
redis.call('SET', KEYS[2], ARGV[2])
return ARGV[1] .. ' 1'
`;

const ROTATE = `
local cur = redis.call('GET', KEYS[1])
local enabled = '1'
if cur then
  local old, flag = string.match(cur, '^(%S+) (%d)$')
  if old then redis.call('DEL', ARGV[3] .. old) end
  if flag then enabled = flag end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. enabled)
redis.call('SET', KEYS[2], ARGV[2])
return ARGV[1] .. ' ' .. enabled
`;

// A group that never had a link gets one (ARGV[2]) in the asked state.
const SET_ENABLED = `
local cur = redis.call('GET', KEYS[1])
local id = cur and string.match(cur, '^(%S+) %d$')
if not id then
  id = ARGV[2]
  redis.call('SET', KEYS[2], ARGV[3])
end
redis.call('SET', KEYS[1], id .. ' ' .. ARGV[1])
return id .. ' ' .. ARGV[1]
`;

// Stored per group: "<link id> <1|0>" (enabled or not).
const StoredLinkSchema = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9_-]{22} [01]$/),
  v.transform((raw): JoinLink => ({ linkId: raw.slice(0, 22), enabled: raw.endsWith("1") })),
);
// RESOLVE's answer: the group id and the enabled flag.
const ResolvedSchema = v.tuple([v.pipe(v.string(), v.regex(/^[0-9a-f]{1,128}$/)), v.picklist(["0", "1"])]);

const RESOLVE = `
local groupId = redis.call('GET', KEYS[1])
if not groupId then return false end
local cur = redis.call('GET', ARGV[1] .. groupId)
if not cur then return false end
local id, flag = string.match(cur, '^(%S+) (%d)$')
if id ~= ARGV[2] then return false end
return {groupId, flag}
`;

/**
 * Join links over Upstash Redis under `keyPrefix`. Every method may throw
 * {@link import("../shared/errors.js").StoreUnavailableError} when Redis cannot be reached.
 */
export function createJoinLinkStore(redis: Redis, keyPrefix: string, newId: () => string = newJoinLinkId): JoinLinkStore {
  const byGroupPrefix = `${keyPrefix}:join-link:group:`;
  const byLinkPrefix = `${keyPrefix}:join-link:id:`;

  const parse = (raw: unknown, groupId: string): JoinLink => {
    const parsed = v.safeParse(StoredLinkSchema, raw);
    if (!parsed.success) throw new CorruptStateError(`Join link of group ${groupId} has an unexpected shape`);
    return parsed.output;
  };

  return {
    async ensure(groupId) {
      const id = newId();
      const raw = await storeCall("ensure join link", () =>
        redis.eval<string[], string>(ENSURE, [byGroupPrefix + groupId, byLinkPrefix + id], [id, groupId]),
      );
      return parse(raw, groupId);
    },
    async resolve(linkId) {
      if (!JOIN_LINK_ID.test(linkId)) return null;
      const reply = await storeCall("resolve join link", () =>
        redis.eval<string[], [string, string] | null>(RESOLVE, [byLinkPrefix + linkId], [byGroupPrefix, linkId]),
      );
      const parsed = v.safeParse(ResolvedSchema, reply);
      return parsed.success ? { groupId: parsed.output[0], enabled: parsed.output[1] === "1" } : null;
    },
    async rotate(groupId) {
      const id = newId();
      const raw = await storeCall("rotate join link", () =>
        redis.eval<string[], string>(ROTATE, [byGroupPrefix + groupId, byLinkPrefix + id], [id, groupId, byLinkPrefix]),
      );
      return parse(raw, groupId);
    },
    async setEnabled(groupId, enabled) {
      const id = newId();
      const raw = await storeCall("set join link state", () =>
        redis.eval<string[], string>(SET_ENABLED, [byGroupPrefix + groupId, byLinkPrefix + id], [enabled ? "1" : "0", id, groupId]),
      );
      return parse(raw, groupId);
    },
  };
}

/** The join page of a link on this deployment. */
export function joinPageUrl(publicUrl: string, joinLinkId: string): string {
  return `${publicUrl}/join/${joinLinkId}`;
}

/**
 * The links a group is shared by: its own join page, the link service's link when there is one,
 * and `url`, the one to hand out (the link service's if any, else the join page).
 */
export function groupUrls(
  config: { readonly publicUrl: string; readonly linkService: { readonly baseUrl: string } | null },
  serviceLinkId: string | null,
  joinLinkId: string,
): { joinUrl: string; serviceUrl: string | null; url: string } {
  const joinUrl = joinPageUrl(config.publicUrl, joinLinkId);
  const serviceUrl = config.linkService && serviceLinkId ? config.linkService.baseUrl + serviceLinkId : null;
  return { joinUrl, serviceUrl, url: serviceUrl ?? joinUrl };
}

/** 128 random bits, base64url: unguessable, short enough for a QR code. */
export function newJoinLinkId(): string {
  return randomBytes(16).toString("base64url");
}
