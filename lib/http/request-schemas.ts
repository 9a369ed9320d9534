import * as v from "valibot";
import { AddressSchema } from "../shared/address.js";
import { InvalidRequestError } from "../shared/errors.js";
import { OPEN_RULES, RulesSchema } from "../shared/rules.js";
import { MAX_MEMBER_BATCH } from "../membership/membership.js";
import { JOIN_LINK_ID } from "../stores/join-links.js";

// Every request body and query the handlers accept, in one place: the use cases take plain, already-valid values.

// XMTP limits group metadata in UTF-8 bytes (libxmtp: name 100, description 1000, image URL 2048), not characters.
/** A group's name: 1 to 100 bytes of UTF-8 after trimming. */
export const GroupNameSchema = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.minLength(1, "must not be empty"),
  v.maxBytes(100, "must be at most 100 bytes of UTF-8 (about 100 Latin letters, fewer accented letters or emoji)"),
);

/** A group's description: at most 1000 bytes of UTF-8 after trimming. */
export const GroupDescriptionSchema = v.pipe(
  v.string("must be a string"),
  v.trim(),
  v.maxBytes(1000, "must be at most 1000 bytes of UTF-8 (about 1000 Latin letters, fewer accented letters or emoji)"),
);

/** The body of `POST /api/create`. Unknown keys are rejected. */
export const CreateGroupSchema = v.strictObject({
  name: GroupNameSchema,
  description: v.optional(GroupDescriptionSchema, ""),
  imageUrl: v.optional(
    v.pipe(v.string("must be a string"), v.trim(), v.url("must be a URL"), v.startsWith("https://", "must be an https URL"), v.maxBytes(2048, "must be at most 2048 bytes")),
  ),
  rules: v.optional(RulesSchema, OPEN_RULES),
});

/** Accepted `Idempotency-Key` values (as Stripe's and the IETF draft's: an opaque token). */
export const IdempotencyKeySchema = v.pipe(
  v.string(),
  v.regex(/^[\x21-\x7e]{8,255}$/, "Idempotency-Key must be 8 to 255 visible ASCII characters"),
);

/**
 * Reads the optional `Idempotency-Key` header.
 * @throws {InvalidRequestError} when present but malformed.
 */
export function readIdempotencyKey(request: Request): string | undefined {
  const raw = request.headers.get("idempotency-key");
  if (raw === null) return undefined;
  const parsed = v.safeParse(IdempotencyKeySchema, raw.trim());
  if (!parsed.success) throw new InvalidRequestError(parsed.issues[0].message);
  return parsed.output;
}

/** The body the link service posts to the webhook (its own shape: unknown keys are ignored). */
export const WebhookJoinSchema = v.object({
  groupLinkId: v.pipe(v.string("must be a string"), v.trim(), v.minLength(1, "must not be empty"), v.maxLength(128)),
  topic: v.pipe(v.string("must be a string"), v.trim(), v.regex(/^[0-9a-f]{1,128}$/i, "must be a group id (hex)")),
  walletAddress: AddressSchema,
});

/** `POST /api/join/challenge` body. */
export const ChallengeRequestSchema = v.strictObject({
  linkId: v.pipe(v.string("must be a string"), v.regex(JOIN_LINK_ID, "must be a join link id")),
  address: AddressSchema,
  chainId: v.pipe(v.number("must be a number"), v.integer("must be a whole number"), v.minValue(1, "must be positive"), v.maxValue(Number.MAX_SAFE_INTEGER)),
});

/** `POST /api/admin/challenge` body: the wallet signing in to the dashboard and the chain it is on. */
export const AdminChallengeSchema = v.strictObject({
  address: AddressSchema,
  chainId: ChallengeRequestSchema.entries.chainId,
});

/** `POST /api/join` body (and `POST /api/admin/session`: a signed sign-in message). */
export const SignedJoinSchema = v.strictObject({
  message: v.pipe(v.string("must be a string"), v.minLength(1, "must not be empty"), v.maxLength(4096, "must be at most 4096 characters")),
  // EIP-6492 signatures carry a factory call, so they may be long; 64 KiB of body caps them anyway.
  signature: v.pipe(v.string("must be a string"), v.regex(/^0x(?:[0-9a-fA-F]{2}){1,30000}$/, "must be a 0x hex signature")),
});

/**
 * A query string that takes exactly `entries`: any other parameter is a 400 naming it, so a misspelt or unsupported
 * one (`?dryrun=1` on an endpoint that would then act for real) is never silently ignored.
 */
export function strictQuery<E extends v.ObjectEntries>(entries: E) {
  return v.strictObject(entries, (issue) => (issue.expected === "never" ? "unknown query parameter" : "must be a query string"));
}

/** No query parameters at all (operator endpoints that take none). */
export const NoQuerySchema = strictQuery({});

const flag = (name: string) =>
  v.optional(
    v.pipe(
      v.picklist(["1", "true", "0", "false"], `${name} must be 1, true, 0 or false`),
      v.transform((raw) => raw === "1" || raw === "true"),
    ),
    "0",
  );

/** `?dryRun=1` on `PATCH /api/groups/:id` and the cron: answer what would happen, change nothing. */
export const DryRunQuerySchema = strictQuery({ dryRun: flag("dryRun") });

/** Pagination query: `?offset&limit`. */
export const PageSchema = strictQuery({
  offset: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, "offset must be a whole number"), v.transform(Number)), "0"),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, "limit must be a whole number"), v.transform(Number), v.minValue(1, "limit must be at least 1"), v.maxValue(100, "limit must be at most 100")), "20"),
});

/** `?offset&limit&type` for the audit log: `changes`, `denials` or `all` (the default). */
export const AuditQuerySchema = strictQuery({
  ...PageSchema.entries,
  type: v.optional(v.picklist(["changes", "denials", "all"], "type must be changes, denials or all"), "all"),
});

/** `{addresses:[…]}` for adding or removing members. */
export const AddressesSchema = v.strictObject({
  addresses: v.pipe(
    v.array(AddressSchema, "must be an array of addresses"),
    v.minLength(1, "must list at least one address"),
    v.maxLength(MAX_MEMBER_BATCH, `must list at most ${MAX_MEMBER_BATCH} addresses`),
    v.transform((list) => [...new Set(list)]),
  ),
});

/** `{text}` for sending a message. */
export const MessageSchema = v.strictObject({
  text: v.pipe(v.string("must be a string"), v.minLength(1, "must not be empty"), v.maxLength(4000, "must be at most 4000 characters")),
});

/** `?limit&before` for listing messages. */
export const MessagesQuerySchema = strictQuery({
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, "limit must be a whole number"), v.transform(Number), v.minValue(1), v.maxValue(100, "limit must be at most 100")), "20"),
  before: v.optional(v.pipe(v.string(), v.isoTimestamp("before must be an ISO 8601 timestamp"), v.transform((s) => new Date(s)))),
});

/** `PATCH /api/groups/:id` body. */
export const GroupPatchSchema = v.pipe(
  v.strictObject({
    name: v.optional(GroupNameSchema),
    description: v.optional(GroupDescriptionSchema),
    rules: v.optional(RulesSchema),
  }),
  v.check((p) => p.name !== undefined || p.description !== undefined || p.rules !== undefined, "must change name, description or rules"),
);

/** `POST /api/groups/:id/join-link` body. */
export const JoinLinkActionSchema = v.strictObject({
  action: v.picklist(["rotate", "disable", "enable"], "must be rotate, disable or enable"),
});
