import { createHash } from "node:crypto";
import type { CommitLogSignature, IdentityUpdate, PagingInfo, WelcomeMessageInput } from "./codecs.js";
import { readGroupMessage, readKeyPackageInstallationKey } from "./mls-wire.js";

/** The real node's page size, and its largest. */
export const MAX_PAGE_SIZE = 100;
/** Identity updates an inbox may ever have (the real node refuses more). */
export const MAX_IDENTITY_UPDATES = 256;

const ASCENDING = 1;

export interface StoredGroupMessage {
  readonly id: number;
  readonly createdNs: number;
  readonly groupId: Uint8Array;
  readonly data: Uint8Array;
  readonly senderHmac: Uint8Array;
  readonly shouldPush: boolean;
  readonly isCommit: boolean;
}

export interface StoredWelcome {
  readonly id: number;
  readonly createdNs: number;
  readonly installationKey: Uint8Array;
  readonly input: WelcomeMessageInput;
}

export interface StoredIdentityUpdate {
  readonly sequenceId: number;
  readonly serverTimestampNs: number;
  readonly update: IdentityUpdate;
}

export interface StoredCommitLogEntry {
  readonly sequenceId: number;
  readonly serializedCommitLogEntry: Uint8Array;
  readonly signature: CommitLogSignature | undefined;
}

/** A request the node refuses (gRPC INVALID_ARGUMENT / FAILED_PRECONDITION). */
export class NodeRequestError extends Error {
  override readonly name = "NodeRequestError";
  constructor(
    readonly grpcCode: number,
    message: string,
  ) {
    super(message);
  }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const nowNs = () => Date.now() * 1_000_000;

/** A page request as the node applies it. */
interface Page {
  readonly ascending: boolean;
  readonly limit: number;
  /** Exclusive; 0 for none. */
  readonly cursor: number;
}

/** The real node's reading of PagingInfo: descending unless asked otherwise, at most 100. */
function pageOf(paging: PagingInfo | undefined, ascendingOnly = false): Page {
  return {
    ascending: ascendingOnly || paging?.direction === ASCENDING,
    limit: paging && paging.limit > 0 && paging.limit <= MAX_PAGE_SIZE ? paging.limit : MAX_PAGE_SIZE,
    cursor: paging ? paging.idCursor.toNumber() : 0,
  };
}

/** A page of rows by id (a cursor back only on a full page, as the real node does). */
function page<T extends { id: number }>(rows: readonly T[], p: Page): { rows: T[]; paging: { direction: number; limit: number; idCursor: number } } {
  const ordered = p.ascending ? rows.filter((r) => r.id > p.cursor) : [...rows].reverse().filter((r) => p.cursor === 0 || r.id < p.cursor);
  const out = ordered.slice(0, p.limit);
  const last = out.at(-1);
  return { rows: out, paging: { direction: p.ascending ? ASCENDING : 2, limit: p.limit, idCursor: out.length >= p.limit && last ? last.id : 0 } };
}

/**
 * Everything the node stores, in memory. It keeps what clients publish and serves it back in order;
 * it reads only group ids, commit flags and installation keys, and validates nothing else.
 */
export class NodeState {
  private nextId = 1;
  private readonly groupMessages = new Map<string, StoredGroupMessage[]>();
  private readonly messageHashes = new Set<string>();
  private readonly welcomes = new Map<string, StoredWelcome[]>();
  private readonly keyPackages = new Map<string, Uint8Array>();
  private readonly identityLogs = new Map<string, StoredIdentityUpdate[]>();
  private readonly inboxByIdentifier = new Map<string, string>();
  private readonly commitLogs = new Map<string, StoredCommitLogEntry[]>();
  private readonly groupListeners = new Set<(message: StoredGroupMessage) => void>();
  private readonly welcomeListeners = new Set<(welcome: StoredWelcome) => void>();

  /** Stores group messages in order; a message already stored (same group and bytes) is skipped, as the real node does. */
  sendGroupMessages(inputs: readonly { data: Uint8Array; senderHmac: Uint8Array; shouldPush: boolean }[]): void {
    // Every message is read before any is stored: a batch with one unreadable message stores nothing.
    const facts = inputs.map((input) => ({ input, ...readGroupMessage(input.data) }));
    for (const { input, groupId, isCommit } of facts) {
      const digest = createHash("sha256").update(groupId).update(input.data).digest("hex");
      if (this.messageHashes.has(digest)) continue;
      this.messageHashes.add(digest);
      const message: StoredGroupMessage = { id: this.nextId++, createdNs: nowNs(), groupId, data: input.data, senderHmac: input.senderHmac, shouldPush: input.shouldPush, isCommit };
      const key = hex(groupId);
      const list = this.groupMessages.get(key) ?? [];
      list.push(message);
      this.groupMessages.set(key, list);
      for (const listener of this.groupListeners) listener(message);
    }
  }

  queryGroupMessages(groupId: Uint8Array, paging: PagingInfo | undefined) {
    const { rows, paging: out } = page(this.groupMessages.get(hex(groupId)) ?? [], pageOf(paging));
    return { messages: rows, pagingInfo: out };
  }

  /** Every message of the group after `cursor`, oldest first (a subscription's history). */
  groupMessagesAfter(groupId: Uint8Array, cursor: number): StoredGroupMessage[] {
    return (this.groupMessages.get(hex(groupId)) ?? []).filter((m) => m.id > cursor);
  }

  newestGroupMessage(groupId: Uint8Array): StoredGroupMessage | undefined {
    return this.groupMessages.get(hex(groupId))?.at(-1);
  }

  sendWelcomes(inputs: readonly WelcomeMessageInput[]): void {
    for (const input of inputs) {
      const installationKey = input.v1?.installationKey ?? input.welcomePointer?.installationKey;
      if (!installationKey || installationKey.length === 0) throw new NodeRequestError(3, "invalid welcome message: missing version or installation key");
    }
    for (const input of inputs) {
      const installationKey = (input.v1?.installationKey ?? input.welcomePointer?.installationKey)!;
      const welcome: StoredWelcome = { id: this.nextId++, createdNs: nowNs(), installationKey, input };
      const key = hex(installationKey);
      const list = this.welcomes.get(key) ?? [];
      list.push(welcome);
      this.welcomes.set(key, list);
      for (const listener of this.welcomeListeners) listener(welcome);
    }
  }

  queryWelcomes(installationKey: Uint8Array, paging: PagingInfo | undefined) {
    const { rows, paging: out } = page(this.welcomes.get(hex(installationKey)) ?? [], pageOf(paging));
    return { messages: rows, pagingInfo: out };
  }

  /** Every welcome of the installation after `cursor`, oldest first. */
  welcomesAfter(installationKey: Uint8Array, cursor: number): StoredWelcome[] {
    return (this.welcomes.get(hex(installationKey)) ?? []).filter((w) => w.id > cursor);
  }

  /** Stores the key package under its installation key (the newest one replaces the last). */
  uploadKeyPackage(keyPackage: Uint8Array): Uint8Array {
    const installationKey = readKeyPackageInstallationKey(keyPackage);
    this.keyPackages.set(hex(installationKey), keyPackage);
    return installationKey;
  }

  /** Key packages in the order asked; unknown installations get none (an empty entry), as the real node answers. */
  fetchKeyPackages(installationKeys: readonly Uint8Array[]): (Uint8Array | undefined)[] {
    return installationKeys.map((key) => this.keyPackages.get(hex(key)));
  }

  /** Appends an identity update and follows its Ethereum identifiers (added, or revoked). */
  publishIdentityUpdate(update: IdentityUpdate): void {
    const log = this.identityLogs.get(update.inboxId) ?? [];
    if (log.length >= MAX_IDENTITY_UPDATES) throw new NodeRequestError(9, "inbox log is full");
    log.push({ sequenceId: this.nextId++, serverTimestampNs: nowNs(), update });
    this.identityLogs.set(update.inboxId, log);
    for (const action of update.actions) {
      // IdentifierKind 0 (unspecified, older clients) and 1 are Ethereum addresses.
      if (action.createInbox && action.createInbox.initialIdentifierKind <= 1) {
        this.inboxByIdentifier.set(action.createInbox.initialIdentifier.toLowerCase(), update.inboxId);
      }
      const added = action.add?.newMemberIdentifier?.ethereumAddress;
      if (added) this.inboxByIdentifier.set(added.toLowerCase(), update.inboxId);
      const revoked = action.revoke?.memberToRevoke?.ethereumAddress;
      if (revoked && this.inboxByIdentifier.get(revoked.toLowerCase()) === update.inboxId) this.inboxByIdentifier.delete(revoked.toLowerCase());
    }
  }

  identityUpdates(inboxId: string, afterSequenceId: number): StoredIdentityUpdate[] {
    return (this.identityLogs.get(inboxId) ?? []).filter((u) => u.sequenceId > afterSequenceId);
  }

  inboxIdOf(identifier: string): string | undefined {
    return this.inboxByIdentifier.get(identifier.toLowerCase());
  }

  publishCommitLog(groupId: Uint8Array, serializedCommitLogEntry: Uint8Array, signature: CommitLogSignature | undefined): void {
    const key = hex(groupId);
    const list = this.commitLogs.get(key) ?? [];
    list.push({ sequenceId: this.nextId++, serializedCommitLogEntry, signature });
    this.commitLogs.set(key, list);
  }

  queryCommitLog(groupId: Uint8Array, paging: PagingInfo | undefined) {
    // The real node serves the commit log ascending only.
    const rows = (this.commitLogs.get(hex(groupId)) ?? []).map((e) => ({ ...e, id: e.sequenceId }));
    const { rows: out, paging: info } = page(rows, pageOf(paging, true));
    return { entries: out, pagingInfo: info };
  }

  /** Calls `listener` with every group message stored from now on, until the returned function is called. */
  onGroupMessage(listener: (message: StoredGroupMessage) => void): () => void {
    this.groupListeners.add(listener);
    return () => this.groupListeners.delete(listener);
  }

  onWelcome(listener: (welcome: StoredWelcome) => void): () => void {
    this.welcomeListeners.add(listener);
    return () => this.welcomeListeners.delete(listener);
  }

  /** Counts for one group (tests and benchmarks: how many commits a request made). */
  groupStats(groupId: string): { messages: number; commits: number } {
    const list = this.groupMessages.get(groupId.toLowerCase()) ?? [];
    return { messages: list.length, commits: list.filter((m) => m.isCommit).length };
  }
}
