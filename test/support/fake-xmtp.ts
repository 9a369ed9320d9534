import { randomBytes } from "node:crypto";
import { createMutex } from "../../lib/shared/mutex.js";
import { toXmtpError, withErrorMapping, XmtpGroupNotFoundError, type XmtpGroupInfo, type XmtpMessage, type XmtpPort, type XmtpSession } from "../../lib/xmtp/port.js";
import type { Address } from "../../lib/shared/address.js";

interface FakeGroup {
  info: XmtpGroupInfo;
  members: Map<string, { addresses: Address[]; isAdmin: boolean }>;
  messages: XmtpMessage[];
  /** False until publishGroup: the group exists on its creator's installation only. */
  published: boolean;
}

// libxmtp's limits on metadata, in UTF-8 bytes, and its error text for them (GroupError::TooManyCharacters).
const METADATA_LIMITS = { name: 100, description: 1000, imageUrl: 2048 } as const;
function checkMetadata(changes: { name?: string; description?: string; imageUrl?: string }): void {
  for (const field of ["name", "description", "imageUrl"] as const) {
    const value = changes[field];
    if (value !== undefined && Buffer.byteLength(value, "utf8") > METADATA_LIMITS[field]) {
      throw bindingError(`Exceeded max characters for this field. Must be under: ${METADATA_LIMITS[field]}`);
    }
  }
}

/** An error shaped like the native binding's: a plain Error with `code: "GenericFailure"`. */
export function bindingError(message: string): Error {
  return Object.assign(new Error(message), { code: "GenericFailure" });
}

const UNAVAILABLE =
  'api client error api client at endpoint "/xmtp.identity.api.v1.IdentityApi/GetInboxIds" has error status: \'The service is currently unavailable\', self: "dns error"';

// libxmtp's SyncSummary (its Display) as sync_until_intent_resolved returns it when the intent ended in Error.
const INTENT_ERROR_SUMMARY = [
  "================================= Errors Occured During Sync ===========================",
  "1 errors publishing intents",
  "processed 0 total messages, ",
  "========================================================================================",
  "",
].join("\n");

/**
 * An in-memory XMTP network that behaves like the real one where this service cares (checked against the real
 * client and the local node): addresses must be registered (have an inbox) to be added, adding a member twice
 * makes no commit, a group is created locally and published apart, metadata limits are UTF-8 bytes, member
 * changes show up as membership-change messages without text, group ids are opaque hex, failures look like
 * the binding's, and the network can be taken down.
 */
export class FakeXmtpNetwork {
  /** While true, every call fails as the binding does when the network is unreachable. */
  down = false;
  /** MLS commits made (group creation, member changes, metadata changes). */
  commits = 0;
  /** Sessions opened, to check that rejected requests never start the client. */
  sessions = 0;
  /** Inboxes XMTP refuses to add (a commit naming one fails as a whole, as the real client's would). */
  readonly unaddable = new Set<string>();
  /**
   * How a refused add fails: libxmtp's error for an inbox it cannot resolve, or the SyncSummary it throws when the
   * commit's intent ended in its final Error state.
   */
  refusal: "identity" | "intent-error" = "identity";
  readonly inboxes = new Map<Address, string>();
  /** Direct messages the backend sent, in order. */
  readonly directMessages: { to: string; text: string }[] = [];
  readonly groups = new Map<string, FakeGroup>();

  /** With `autoRegister`, every address looked up has an inbox (the local dev server's offline mode). */
  constructor(private readonly options: { autoRegister?: boolean } = {}) {}

  /** Gives an address an XMTP inbox (as opening an XMTP app does); idempotent. */
  register(address: string): string {
    const key = address.toLowerCase() as Address;
    let inboxId = this.inboxes.get(key);
    if (!inboxId) {
      inboxId = randomBytes(32).toString("hex");
      this.inboxes.set(key, inboxId);
    }
    return inboxId;
  }

  /** Links another wallet to an existing inbox (as `unsafe_addAccount` does); it then resolves to that inbox. */
  link(inboxId: string, address: string): void {
    this.inboxes.set(address.toLowerCase() as Address, inboxId);
  }

  /** Unlinks a wallet from its inbox (a revocation): it no longer resolves to any inbox. */
  unlink(address: string): void {
    this.inboxes.delete(address.toLowerCase() as Address);
  }

  /** Member addresses of a group (lowercase). */
  memberAddresses(groupId: string): Address[] {
    return [...(this.groups.get(groupId)?.members.values() ?? [])].flatMap((m) => m.addresses);
  }

  /** The XMTP port of the installation of `backendAddress`. */
  port(backendAddress: string): XmtpPort {
    const backendInbox = this.register(backendAddress);
    const installationId = randomBytes(32).toString("hex");
    const exclusive = createMutex();
    return {
      lookupInboxId: async (target) => {
        try {
          this.check();
        } catch (error) {
          throw toXmtpError(error, "inbox lookup");
        }
        if (this.options.autoRegister) this.register(target);
        return this.inboxes.get(target.toLowerCase() as Address) ?? null;
      },
      inboxAddresses: async (inboxId) => {
        try {
          this.check();
        } catch (error) {
          throw toXmtpError(error, "inbox addresses");
        }
        return [...this.inboxes].filter(([, id]) => id === inboxId).map(([a]) => a);
      },
      // The double has no lease to wait for: a watch (a hint) is ignored, and the work runs.
      withSession: (work) =>
        exclusive(async () => {
          this.sessions++;
          // Starting the client needs the network too; the adapter classifies that failure the same way.
          try {
            this.check();
          } catch (error) {
            throw toXmtpError(error, "client start");
          }
          return work(withErrorMapping(this.session(backendInbox, backendAddress.toLowerCase() as Address, installationId)));
        }),
    };
  }

  private check(): void {
    if (this.down) throw bindingError(UNAVAILABLE);
  }

  private session(inboxId: string, address: Address, installationId: string): XmtpSession {
    const group = (groupId: string): FakeGroup => {
      this.check();
      const found = this.groups.get(groupId);
      if (!found || !found.members.has(inboxId)) throw new XmtpGroupNotFoundError(groupId);
      return found;
    };
    const addressesOf = (id: string): Address[] => [...this.inboxes].filter(([, inbox]) => inbox === id).map(([a]) => a);
    const membershipChange = (g: FakeGroup) =>
      g.messages.push({ id: randomBytes(32).toString("hex"), senderInboxId: inboxId, sentAt: new Date(), text: null, kind: "membership-change" });
    return {
      inboxId,
      installationId,
      deadline: Date.now() + 25_000,
      createGroup: async ({ name, description, imageUrl }) => {
        // Local only, as the real client's createGroupOptimistic: no network needed.
        checkMetadata({ name, description, ...(imageUrl ? { imageUrl } : {}) });
        const info: XmtpGroupInfo = { groupId: randomBytes(16).toString("hex"), name, description, imageUrl: imageUrl ?? "", createdAt: new Date() };
        this.groups.set(info.groupId, { info, members: new Map([[inboxId, { addresses: [address], isAdmin: true }]]), messages: [], published: false });
        return info;
      },
      publishGroup: async (groupId) => {
        const g = group(groupId);
        if (g.published) return;
        g.published = true;
        this.commits++;
      },
      getGroup: async (groupId) => {
        this.check();
        const found = this.groups.get(groupId);
        return found?.members.has(inboxId) ? found.info : null;
      },
      // The double never forks: its epoch is the number of member changes.
      groupHealth: async (groupId) => ({ epoch: group(groupId).messages.filter((m) => m.kind === "membership-change").length, maybeForked: false, commitLogForked: null }),
      listMembers: async (groupId) =>
        [...group(groupId).members].map(([id, m]) => ({ inboxId: id, addresses: m.addresses, isAdmin: m.isAdmin })),
      addMembers: async (groupId, inboxIds) => {
        const g = group(groupId);
        const known = new Set(this.inboxes.values());
        const unknown = inboxIds.find((id) => !known.has(id) || this.unaddable.has(id));
        if (unknown && this.refusal === "intent-error") throw bindingError(INTENT_ERROR_SUMMARY);
        if (unknown) throw bindingError(`Group error: Missing identity update for inbox ${unknown}`);
        const fresh = inboxIds.filter((id) => !g.members.has(id));
        if (fresh.length === 0) return;
        for (const id of fresh) g.members.set(id, { addresses: addressesOf(id), isAdmin: false });
        g.published = true;
        this.commits++;
        membershipChange(g);
      },
      removeMembers: async (groupId, inboxIds) => {
        const g = group(groupId);
        const present = inboxIds.filter((id) => g.members.has(id) && id !== inboxId);
        if (present.length === 0) return;
        for (const id of present) g.members.delete(id);
        this.commits++;
        membershipChange(g);
      },
      updateGroup: async (groupId, changes) => {
        const g = group(groupId);
        checkMetadata(changes);
        g.info = {
          ...g.info,
          ...(changes.name !== undefined ? { name: changes.name } : {}),
          ...(changes.description !== undefined ? { description: changes.description } : {}),
          ...(changes.imageUrl !== undefined ? { imageUrl: changes.imageUrl } : {}),
        };
        this.commits++;
      },
      sendText: async (groupId, text) => {
        const g = group(groupId);
        const id = randomBytes(32).toString("hex");
        g.messages.push({ id, senderInboxId: inboxId, sentAt: new Date(), text, kind: "application" });
        return id;
      },
      sendDirectMessage: async (to, text) => {
        this.check();
        if (![...this.inboxes.values()].includes(to)) throw bindingError(`Group error: Missing identity update for inbox ${to}`);
        this.directMessages.push({ to, text });
        this.commits++;
        return randomBytes(32).toString("hex");
      },
      listMessages: async (groupId, { limit, before }) =>
        group(groupId)
          .messages.filter((m) => !before || m.sentAt < before)
          .sort((a, b) => b.sentAt.getTime() - a.sentAt.getTime())
          .slice(0, limit),
    };
  }
}
