import { createHash } from "node:crypto";
import { deserialize, serialize } from "node:v8";
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
  /** The d14n ClientEnvelope it was published in (absent when published over V3). */
  readonly clientEnvelope?: Uint8Array;
}

export interface StoredWelcome {
  readonly id: number;
  readonly createdNs: number;
  readonly installationKey: Uint8Array;
  readonly input: WelcomeMessageInput;
  readonly clientEnvelope?: Uint8Array;
}

export interface StoredIdentityUpdate {
  readonly sequenceId: number;
  readonly serverTimestampNs: number;
  readonly update: IdentityUpdate;
  readonly clientEnvelope?: Uint8Array;
}

export interface StoredKeyPackage {
  readonly id: number;
  readonly createdNs: number;
  readonly installationKey: Uint8Array;
  readonly keyPackage: Uint8Array;
  readonly clientEnvelope?: Uint8Array;
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
  private readonly welcomes = new Map<string, StoredWelcome[]>();
  private readonly keyPackages = new Map<string, StoredKeyPackage>();
  private readonly messageByHash = new Map<string, StoredGroupMessage>();
  private readonly identityLogs = new Map<string, StoredIdentityUpdate[]>();
  private readonly inboxByIdentifier = new Map<string, string>();
  private readonly commitLogs = new Map<string, StoredCommitLogEntry[]>();
  private readonly groupListeners = new Set<(message: StoredGroupMessage) => void>();
  private readonly welcomeListeners = new Set<(welcome: StoredWelcome) => void>();
  private readonly identityListeners = new Set<(update: StoredIdentityUpdate) => void>();
  private readonly keyPackageListeners = new Set<(keyPackage: StoredKeyPackage) => void>();

  /** Everything stored, as bytes (benchmark fixtures: a padded network kept between runs); {@link load} puts it back. */
  dump(): Buffer {
    const { nextId, groupMessages, welcomes, keyPackages, messageByHash, identityLogs, inboxByIdentifier, commitLogs } = this;
    return serialize({ version: 1, nextId, groupMessages, welcomes, keyPackages, messageByHash, identityLogs, inboxByIdentifier, commitLogs });
  }

  /** Replaces everything stored with what {@link dump} gave (listeners stay). @throws {Error} bytes of another format. */
  load(bytes: Buffer): void {
    const saved = deserialize(bytes) as {
      version: unknown;
      nextId: number;
      groupMessages: Map<string, StoredGroupMessage[]>;
      welcomes: Map<string, StoredWelcome[]>;
      keyPackages: Map<string, StoredKeyPackage>;
      messageByHash: Map<string, StoredGroupMessage>;
      identityLogs: Map<string, StoredIdentityUpdate[]>;
      inboxByIdentifier: Map<string, string>;
      commitLogs: Map<string, StoredCommitLogEntry[]>;
    };
    if (saved.version !== 1) throw new Error("not a dump of this node's store");
    this.nextId = saved.nextId;
    const put = <K, V>(into: Map<K, V>, from: Map<K, V>) => {
      into.clear();
      for (const [k, v] of from) into.set(k, v);
    };
    put(this.groupMessages, saved.groupMessages);
    put(this.welcomes, saved.welcomes);
    put(this.keyPackages, saved.keyPackages);
    put(this.messageByHash, saved.messageByHash);
    put(this.identityLogs, saved.identityLogs);
    put(this.inboxByIdentifier, saved.inboxByIdentifier);
    put(this.commitLogs, saved.commitLogs);
  }

  /**
   * Stores group messages in order; a message already stored (same group and bytes) is skipped, as the real node
   * does. Answers the stored message for each input (the earlier one for a repeat).
   */
  sendGroupMessages(inputs: readonly { data: Uint8Array; senderHmac: Uint8Array; shouldPush: boolean; clientEnvelope?: Uint8Array }[]): StoredGroupMessage[] {
    // Every message is read before any is stored: a batch with one unreadable message stores nothing.
    const facts = inputs.map((input) => ({ input, ...readGroupMessage(input.data) }));
    const stored: StoredGroupMessage[] = [];
    for (const { input, groupId, isCommit } of facts) {
      const digest = createHash("sha256").update(groupId).update(input.data).digest("hex");
      const earlier = this.messageByHash.get(digest);
      if (earlier) {
        stored.push(earlier);
        continue;
      }
      const message: StoredGroupMessage = {
        id: this.nextId++,
        createdNs: nowNs(),
        groupId,
        data: input.data,
        senderHmac: input.senderHmac,
        shouldPush: input.shouldPush,
        isCommit,
        ...(input.clientEnvelope ? { clientEnvelope: input.clientEnvelope } : {}),
      };
      this.messageByHash.set(digest, message);
      stored.push(message);
      const key = hex(groupId);
      const list = this.groupMessages.get(key) ?? [];
      list.push(message);
      this.groupMessages.set(key, list);
      for (const listener of this.groupListeners) listener(message);
    }
    return stored;
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

  sendWelcomes(inputs: readonly WelcomeMessageInput[], clientEnvelopes?: readonly Uint8Array[]): StoredWelcome[] {
    for (const input of inputs) {
      const installationKey = input.v1?.installationKey ?? input.welcomePointer?.installationKey;
      if (!installationKey || installationKey.length === 0) throw new NodeRequestError(3, "invalid welcome message: missing version or installation key");
    }
    return inputs.map((input, index) => {
      const installationKey = (input.v1?.installationKey ?? input.welcomePointer?.installationKey)!;
      const clientEnvelope = clientEnvelopes?.[index];
      const welcome: StoredWelcome = { id: this.nextId++, createdNs: nowNs(), installationKey, input, ...(clientEnvelope ? { clientEnvelope } : {}) };
      const key = hex(installationKey);
      const list = this.welcomes.get(key) ?? [];
      list.push(welcome);
      this.welcomes.set(key, list);
      for (const listener of this.welcomeListeners) listener(welcome);
      return welcome;
    });
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
  uploadKeyPackage(keyPackage: Uint8Array, clientEnvelope?: Uint8Array): StoredKeyPackage {
    const installationKey = readKeyPackageInstallationKey(keyPackage);
    const stored: StoredKeyPackage = { id: this.nextId++, createdNs: nowNs(), installationKey, keyPackage, ...(clientEnvelope ? { clientEnvelope } : {}) };
    this.keyPackages.set(hex(installationKey), stored);
    for (const listener of this.keyPackageListeners) listener(stored);
    return stored;
  }

  /** Key packages in the order asked; unknown installations get none (an empty entry), as the real node answers. */
  fetchKeyPackages(installationKeys: readonly Uint8Array[]): (Uint8Array | undefined)[] {
    return installationKeys.map((key) => this.keyPackages.get(hex(key))?.keyPackage);
  }

  /** The newest key package of an installation, as stored. */
  keyPackageOf(installationKey: Uint8Array): StoredKeyPackage | undefined {
    return this.keyPackages.get(hex(installationKey));
  }

  /** Appends an identity update and follows its Ethereum identifiers (added, or revoked). */
  publishIdentityUpdate(update: IdentityUpdate, clientEnvelope?: Uint8Array): StoredIdentityUpdate {
    const log = this.identityLogs.get(update.inboxId) ?? [];
    if (log.length >= MAX_IDENTITY_UPDATES) throw new NodeRequestError(9, "inbox log is full");
    const stored: StoredIdentityUpdate = { sequenceId: this.nextId++, serverTimestampNs: nowNs(), update, ...(clientEnvelope ? { clientEnvelope } : {}) };
    log.push(stored);
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
    for (const listener of this.identityListeners) listener(stored);
    return stored;
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

  onIdentityUpdate(listener: (update: StoredIdentityUpdate) => void): () => void {
    this.identityListeners.add(listener);
    return () => this.identityListeners.delete(listener);
  }

  onKeyPackage(listener: (keyPackage: StoredKeyPackage) => void): () => void {
    this.keyPackageListeners.add(listener);
    return () => this.keyPackageListeners.delete(listener);
  }

  /** Every group message of a group, oldest first. */
  groupMessagesOf(groupId: Uint8Array): readonly StoredGroupMessage[] {
    return this.groupMessages.get(hex(groupId)) ?? [];
  }

  /** Every welcome of an installation, oldest first. */
  welcomesOf(installationKey: Uint8Array): readonly StoredWelcome[] {
    return this.welcomes.get(hex(installationKey)) ?? [];
  }

  /** Every identity update of an inbox, oldest first. */
  identityLogOf(inboxId: string): readonly StoredIdentityUpdate[] {
    return this.identityLogs.get(inboxId) ?? [];
  }

  /** Counts for one group (tests and benchmarks: how many commits a request made). */
  groupStats(groupId: string): { messages: number; commits: number } {
    const list = this.groupMessages.get(groupId.toLowerCase()) ?? [];
    return { messages: list.length, commits: list.filter((m) => m.isCommit).length };
  }
}
