import type { Address } from "../shared/address.js";
import { asLocalStorageError, DependencyUnavailableError, LocalStorageError, NotFoundError } from "../shared/errors.js";
import type { WriteFence } from "../shared/redis.js";
import { V3_RETIRED } from "./networks.js";

/**
 * The longest a session may take, from the call (waits included) to the end of its final save: the function's
 * maxDuration (60 s in vercel.json) less what a request does around its session.
 */
export const SESSION_BUDGET_MS = 50_000;

/** XMTP's ceiling on a group's members, the backend's own inbox included. */
export const MAX_GROUP_MEMBERS = 250;

/** A member of an XMTP group as this service needs it. */
export interface XmtpMember {
  readonly inboxId: string;
  /** Ethereum addresses linked to the inbox, lowercase. */
  readonly addresses: readonly Address[];
  readonly isAdmin: boolean;
}

/** A text (or other content, rendered as its fallback) message in a group. */
export interface XmtpMessage {
  readonly id: string;
  readonly senderInboxId: string;
  readonly sentAt: Date;
  /** The text, or the content's fallback, or null for content with neither. */
  readonly text: string | null;
  readonly kind: "application" | "membership-change";
}

/** How this installation's copy of a group compares with the network's (libxmtp's fork detection). */
export interface XmtpGroupHealth {
  readonly epoch: number;
  /** libxmtp saw messages it could not process in a way that suggests this copy has left the group's history. */
  readonly maybeForked: boolean;
  /** The commit log disagrees with the network's; null when not yet checked. */
  readonly commitLogForked: boolean | null;
}

/** Group metadata as XMTP holds it. */
export interface XmtpGroupInfo {
  readonly groupId: string;
  readonly name: string;
  readonly description: string;
  readonly imageUrl: string;
  readonly createdAt: Date;
}

/**
 * The operations this service performs on XMTP, all as the backend wallet's installation.
 * Implemented by the node-sdk adapter in production and by a network double in tests.
 * Every method may throw {@link XmtpUnavailableError} (network) or {@link XmtpOperationError} (rejected).
 */
export interface XmtpSession {
  /** The backend wallet's inbox id. */
  readonly inboxId: string;
  /** This installation's id (hex). */
  readonly installationId: string;
  /** When the session must stop starting new network work (epoch ms): what is left waits for the next session. */
  readonly deadline: number;
  /**
   * The session's fencing number, when its implementation has one: Redis writes made on the session's behalf
   * carry it, so they are refused once another holder has taken over.
   */
  readonly fence?: WriteFence;
  /**
   * Creates a group on this installation only (no network yet): only admins may add or remove members or change
   * metadata; the backend is super admin. Nobody else knows of it until {@link publishGroup}.
   */
  createGroup(input: { name: string; description: string; imageUrl?: string }): Promise<XmtpGroupInfo>;
  /** Publishes a group this installation created (its first commit) and waits until the network has it. Idempotent. @throws {XmtpGroupNotFoundError} */
  publishGroup(groupId: string): Promise<void>;
  /** The group (synced from the network), or null when this installation is not in it (or was removed from it). */
  getGroup(groupId: string): Promise<XmtpGroupInfo | null>;
  /** Whether this installation's copy of the group is still in step with the network (after a sync). @throws {XmtpGroupNotFoundError} */
  groupHealth(groupId: string): Promise<XmtpGroupHealth>;
  /** Current members (synced from the network). @throws {XmtpGroupNotFoundError} */
  listMembers(groupId: string): Promise<XmtpMember[]>;
  /** Adds inboxes in one commit. @throws {XmtpGroupNotFoundError} */
  addMembers(groupId: string, inboxIds: readonly string[]): Promise<void>;
  /** Removes inboxes in one commit. @throws {XmtpGroupNotFoundError} */
  removeMembers(groupId: string, inboxIds: readonly string[]): Promise<void>;
  /** Updates name, description and image of a group. @throws {XmtpGroupNotFoundError} */
  updateGroup(groupId: string, changes: { name?: string; description?: string; imageUrl?: string }): Promise<void>;
  /** Sends a text message; answers its id. @throws {XmtpGroupNotFoundError} */
  sendText(groupId: string, text: string): Promise<string>;
  /**
   * Sends a text in the direct-message conversation with an inbox (found, or created and published); answers the
   * message id. A write: held until saved, like every other.
   */
  sendDirectMessage(inboxId: string, text: string): Promise<string>;
  /** Messages newest first. @throws {XmtpGroupNotFoundError} */
  listMessages(groupId: string, options: { limit: number; before?: Date }): Promise<XmtpMessage[]>;
}

/** Options of {@link XmtpPort.withSession}. */
export interface SessionOptions {
  /**
   * A hint for a caller that may not need its session after all (another holder may do its work): while waiting
   * to start, an implementation may read `key` and stop with {@link SessionNotNeededError} once `until` says so.
   * Implementations may also ignore it and run the work.
   */
  readonly watch?: { readonly key: string; readonly until: (value: string | null) => boolean };
  /**
   * When the session must be over, waits and the final save included (epoch ms), for a caller that has already
   * spent part of its time; never later than {@link SESSION_BUDGET_MS} from the call.
   */
  readonly deadline?: number;
}

/** Runs work against XMTP as the backend installation, one operation at a time per instance. */
export interface XmtpPort {
  /**
   * Runs `work` with a ready session. The session must not escape `work`.
   * @throws {XmtpUnavailableError} when the network cannot be reached.
   * @throws {XmtpBusyError} when another instance held the installation too long to wait for.
   * @throws {SessionNotNeededError} when `options.watch` said the session is no longer needed.
   */
  withSession<T>(work: (session: XmtpSession) => Promise<T>, options?: SessionOptions): Promise<T>;
  /**
   * The inbox id registered for an address, or null when it has none: a network read that needs no session.
   * @throws {XmtpUnavailableError}
   */
  lookupInboxId(address: Address): Promise<string | null>;
  /**
   * The Ethereum addresses linked to an inbox now (lowercase; none for an unknown inbox), read afresh from the
   * network, in the protocol in use: a read that needs no session, no lease and no client.
   * @throws {XmtpUnavailableError} the network could not be read (never answered as fewer addresses).
   */
  inboxAddresses(inboxId: string): Promise<Address[]>;
}

/** The session was not started: while it waited, its watch said another holder had done the work. */
export class SessionNotNeededError extends Error {
  override readonly name = "SessionNotNeededError";
}

/**
 * A port whose implementation is loaded on its first session, so functions that never talk to XMTP
 * (the join page, the challenge) do not load the 37 MB native binding on a cold start. Concurrent
 * first calls share one load; a failed load is retried on the next call.
 */
export function lazyXmtpPort(load: () => Promise<XmtpPort>): XmtpPort {
  let port: Promise<XmtpPort> | undefined;
  const loaded = () =>
    (port ??= load().catch((error: unknown) => {
      port = undefined;
      throw error;
    }));
  return {
    withSession: async (work, options) => (await loaded()).withSession(work, options),
    lookupInboxId: async (address) => (await loaded()).lookupInboxId(address),
    inboxAddresses: async (inboxId) => (await loaded()).inboxAddresses(inboxId),
  };
}

/** The XMTP network could not be reached or timed out; the request may be retried. */
export class XmtpUnavailableError extends DependencyUnavailableError {
  override readonly name: string = "XmtpUnavailableError";
  override readonly publicMessage: string = "The XMTP network is unavailable; try again in a moment";
}

/**
 * XMTP's V3 backend refuses writes for good (it has been retired in favour of the decentralized network), and this
 * deployment has no gateway to move to (503 `xmtp_v3_retired` until an operator sets `XMTP_GATEWAY_HOST`).
 */
export class XmtpV3RetiredError extends XmtpUnavailableError {
  override readonly name = "XmtpV3RetiredError";
  override readonly code = "xmtp_v3_retired";
  override readonly publicMessage = "XMTP's V3 network no longer accepts writes and this service has not moved to XMTP's decentralized network yet; try again later";
}

/**
 * The network this installation writes to changed while the session ran (XMTP's move to its decentralized
 * network): nothing the failed call wrote took effect, and the port runs the whole work once more on the new
 * network. Work that records outcomes must leave them undecided when it sees this, so the second run decides them.
 */
export class XmtpNetworkChangedError extends XmtpUnavailableError {
  override readonly name = "XmtpNetworkChangedError";
}

/** Another instance held the XMTP installation for longer than this request could wait (503: ask again). */
export class XmtpBusyError extends DependencyUnavailableError {
  override readonly name = "XmtpBusyError";
  override readonly publicMessage = "The service is busy; try again in a moment";
}

/** XMTP rejected an operation (not a network failure). */
export class XmtpOperationError extends Error {
  override readonly name: string = "XmtpOperationError";
}

/** The group does not exist for this installation, or the backend was removed from it (404). */
export class XmtpGroupNotFoundError extends NotFoundError {
  override readonly name = "XmtpGroupNotFoundError";
  constructor(readonly groupId: string) {
    super(`Group ${groupId} is not on XMTP for this backend (it was removed from it, or never in it)`);
  }
}

// Errors from the native binding (1.9.1) carry only code "GenericFailure" and libxmtp's Display text, so the
// texts are what can be matched. Transport failures name the API client or the transport.
const TRANSPORT_FAILURE = /api client error|service is currently unavailable|tcp connect|dns error|deadline|timed? ?out|connection (refused|reset)|transport error|unavailable/i;
// A commit whose publishing could not be confirmed (GroupError::SyncFailedToWait): it may or may not have reached
// the network. Never a final "no": retry (503), and the retry finds out (a member already added is answered as such).
const COMMIT_OUTCOME_UNKNOWN = /Sync failed to wait for intent/;
// A SyncSummary with publish errors. A write that waits for its intent (libxmtp's sync_until_intent_resolved)
// throws one only when that intent ended in its final Error state: XMTP will never send it, a refusal (the caller
// may split the batch to find what it will not take). From a plain sync (reads, publishing a created group) it
// says some earlier intent failed to publish, the network perhaps: retry (503).
const SYNC_SUMMARY_WITH_PUBLISH_ERRORS = /\d+ errors publishing intents/;
const WRITES_AWAITING_THEIR_INTENT: ReadonlySet<string> = new Set(["addMembers", "removeMembers", "updateGroup", "sendText"]);
// libxmtp's SQLite and the OS when this instance's disk fails it.
const LOCAL_STORAGE_FAILURE = /database or disk is full|disk I\/O error|No space left on device|read-only file system/i;

/**
 * Classifies an error thrown by the XMTP SDK (or its double) as one of ours.
 * Network failures, and commits whose outcome is unknown, become {@link XmtpUnavailableError}; this instance's
 * disk failing, {@link LocalStorageError}; everything else (a commit XMTP refused included) {@link XmtpOperationError}.
 */
export function toXmtpError(error: unknown, operation: string): Error {
  if (error instanceof XmtpUnavailableError || error instanceof XmtpOperationError || error instanceof XmtpGroupNotFoundError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (V3_RETIRED.test(message)) {
    return new XmtpV3RetiredError(`XMTP ${operation} failed: the V3 backend is retired (set XMTP_GATEWAY_HOST to move to the decentralized network)`, { cause: error });
  }
  if (TRANSPORT_FAILURE.test(message)) {
    return new XmtpUnavailableError(`XMTP ${operation} failed: network unavailable`, { cause: error });
  }
  if (COMMIT_OUTCOME_UNKNOWN.test(message)) {
    return new XmtpUnavailableError(`XMTP ${operation} failed: commit not confirmed`, { cause: error });
  }
  if (SYNC_SUMMARY_WITH_PUBLISH_ERRORS.test(message) && !WRITES_AWAITING_THEIR_INTENT.has(operation)) {
    return new XmtpUnavailableError(`XMTP ${operation} failed: an earlier write could not be published`, { cause: error });
  }
  if (LOCAL_STORAGE_FAILURE.test(message)) return new LocalStorageError(`XMTP ${operation} failed: local storage`, { cause: error });
  const local = asLocalStorageError(error, `XMTP ${operation}`);
  if (local !== error) return local as Error;
  return new XmtpOperationError(`XMTP ${operation} failed`, { cause: error });
}

/** Wraps every method of a session so whatever it throws comes out classified by {@link toXmtpError}. */
export function withErrorMapping(session: XmtpSession): XmtpSession {
  return mapSessionErrors(session, toXmtpError);
}

/** Wraps every method of a session so whatever it throws passes through `map` (given the method's name). */
export function mapSessionErrors(session: XmtpSession, map: (error: unknown, method: string) => unknown): XmtpSession {
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(session)) {
    // Plain values (ids, deadline, fence) as they are.
    if (typeof value !== "function") {
      wrapped[name] = value;
      continue;
    }
    const method = value as (...args: unknown[]) => Promise<unknown>;
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await method.apply(session, args);
      } catch (error) {
        throw map(error, name);
      }
    };
  }
  return wrapped as unknown as XmtpSession;
}
