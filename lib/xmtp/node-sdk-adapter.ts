import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  ApiUrls,
  Client,
  Group,
  type ClientOptions,
  type DecodedMessage,
  type GroupMessageKind,
  type GroupPermissionsOptions,
  type PermissionLevel,
  type Signer,
  type SortDirection,
} from "@xmtp/node-sdk";
import { Client as BindingClient, getInboxIdForIdentifier as lookupInboxIdOnNetwork, inboxStateFromInboxIds as inboxStatesOnNetwork } from "@xmtp/node-bindings";
import * as v from "valibot";
import type { Config, XmtpProtocol } from "../config.js";
import type { Logger } from "../shared/log.js";
import { describeError } from "../shared/log.js";
import type { Redis } from "../shared/redis.js";
import { createDurableDatabase, type DatabaseHolder, type DurableDatabase, type SessionStep } from "./state/durable-database.js";
import { LeaseLostError, LeaseNotNeededError, LeaseTimeoutError } from "./state/lease.js";
import { FencedWriteError } from "../shared/errors.js";
import { waitForClosedDatabase } from "./state/local-files.js";
import { startWriteAheadRelay, type RelayStep, type WriteAheadRelay } from "./state/write-ahead-relay.js";
import { createNetworkChoice, type NetworkChoice } from "./state/network-choice.js";
import { mapSessionErrors, SessionNotNeededError, toXmtpError, XmtpBusyError, withErrorMapping, XmtpGroupNotFoundError, XmtpNetworkChangedError, XmtpV3RetiredError, type XmtpGroupInfo, type XmtpMember, type XmtpMessage, type XmtpPort, type XmtpSession } from "./port.js";
import { StoredAddressSchema, type Address } from "../shared/address.js";
import { createWalletSigner, ETHEREUM_IDENTIFIER } from "./signer.js";
import { d14nInboxAddresses } from "./inbox-log.js";

// Values of the SDK's ambient const enums (see signer.ts for why).
const ADMIN_ONLY = 1 as GroupPermissionsOptions.AdminOnly;
const DESCENDING = 1 as SortDirection.Descending;
const MEMBERSHIP_CHANGE = 1 as GroupMessageKind.MembershipChange;
const MEMBER_LEVEL = 0 as PermissionLevel.Member;

/** Where the backend installation's database lives on this instance. */
export function xmtpDbPath(config: Config["xmtp"], walletAddress: Address): string {
  return join(config.dbDir, `xmtp-${config.env}-${walletAddress}.db3`);
}

/**
 * The binding client inside an SDK client. node-sdk 5.5.0 keeps it private and offers no `close()`, but the
 * binding's `releaseDbConnection()`/`dbReconnect()` are what make the database files complete on disk.
 * It is reached through the one SDK call that forwards to it (`debugInformation.apiStatistics()`).
 */
export function bindingClientOf(client: Client<unknown>): BindingClient {
  const proto = BindingClient.prototype as { apiStatistics: (this: BindingClient) => unknown };
  const original = proto.apiStatistics;
  let captured: BindingClient | undefined;
  proto.apiStatistics = function (this: BindingClient) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- capturing the receiver is the point
    captured = this;
    return original.call(this);
  };
  try {
    client.debugInformation.apiStatistics();
  } finally {
    proto.apiStatistics = original;
  }
  if (!captured) throw new Error("Could not reach the XMTP binding client");
  return captured;
}

/** Where the durable database keeps its state, and who logs. */
export interface XmtpStateOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly logger: Logger;
  /** Tests: a shorter lease, so a killed instance's lease expires sooner. */
  readonly leaseTtlMs?: number;
  /** Tests and benchmarks: see each step of sessions and relayed writes (crash injection, timing). */
  readonly onStep?: (step: SessionStep | RelayStep, detail?: string) => void | Promise<void>;
  /** Benchmarks only: close the client's database after every session, as this code did before (the comparison). */
  readonly releaseBetweenSessions?: boolean;
  /** Benchmarks only: talk to the network directly, without saving ahead of writes (the unsafe baseline). */
  readonly unsafeWithoutWriteAhead?: boolean;
}

/**
 * The production XMTP port: one `@xmtp/node-sdk` client per instance, created on first use from the
 * backend wallet. Every session runs inside the durable database (lease, newest version, persist), so
 * the installation survives cold starts and never runs on an old copy of its state; and the client reaches
 * the network only through the write-ahead relay, so every write the network sees was saved first (a crash
 * at any point leaves a saved state the network is never ahead of: no fork).
 */
export function createNodeSdkXmtp(
  config: Config["xmtp"],
  state: XmtpStateOptions,
): XmtpPort & {
  dbPath: string;
  durable: DurableDatabase;
  network: NetworkChoice;
  /** The protocol of the client this instance has open (null before the first session). */
  readonly protocol: XmtpProtocol | null;
  /** Releases the client's database (shutdown, tests). */
  close(): Promise<void>;
} {
  const { signer, address } = createWalletSigner(config.walletKey);
  const dbPath = xmtpDbPath(config, address);
  const v3Upstream = config.apiUrl ?? ApiUrls[config.env];
  const baseOptions: ClientOptions = {
    env: config.env,
    dbPath,
    dbEncryptionKey: `0x${config.dbEncryptionKey}`,
    appVersion: config.appVersion,
    // Device sync would write to the database in the background, outside any session.
    disableDeviceSync: true,
  };
  let open: { client: Client<unknown>; binding: BindingClient; released: boolean; protocol: XmtpProtocol } | undefined;
  let recordedInstallation: string | undefined;
  const network = createNetworkChoice(state.redis, state.keyPrefix);
  // The protocol last read from Redis, and when: lookups, which need no session, ask again at most every 10 s.
  let lastKnown: { protocol: XmtpProtocol; at: number } | undefined;
  const currentProtocol = async (maxAgeMs: number): Promise<XmtpProtocol> => {
    if (!lastKnown || Date.now() - lastKnown.at > maxAgeMs) lastKnown = { protocol: (await network.read()) ?? config.network, at: Date.now() };
    return lastKnown.protocol;
  };
  // Set by the relay when V3 answers a write with its retirement message; read after each session's work.
  let v3RetiredSeen = false;

  const holder: DatabaseHolder = {
    // The client stays connected between sessions (see DatabaseHolder.keptOpen): its writes can only leave through
    // the relay, which refuses every write outside a session.
    keptOpen: state.releaseBetweenSessions !== true,
    async release() {
      if (open && !open.released) {
        open.binding.releaseDbConnection();
        open.released = true;
        // A query still in flight keeps its connection until it finishes; SQLite checkpoints when the last one
        // closes. Waiting for that keeps the saved copy small (no -wal); if it takes too long the copy carries the
        // -wal instead, read until it holds still.
        await waitForClosedDatabase(dbPath, 2000);
      }
    },
    async discard() {
      await holder.release();
      open = undefined;
      // The client being let go may still be at work (a session abandoned at its deadline, or whose lease was
      // lost): its own relay closes, so nothing it writes can leave under a later session's checkpoints. The next
      // client gets a relay of its own.
      const old = relay;
      relay = undefined;
      await (await old?.catch(() => undefined))?.close();
    },
  };

  const durable = createDurableDatabase({
    redis: state.redis,
    keyPrefix: state.keyPrefix,
    dbPath,
    logger: state.logger,
    networkInstallations: () => countInstallations(),
    ...(state.onStep ? { onStep: state.onStep } : {}),
    ...(state.leaseTtlMs ? { leaseTtlMs: state.leaseTtlMs } : {}),
  });
  let relay: Promise<WriteAheadRelay> | undefined;
  const startRelay = (): Promise<WriteAheadRelay> =>
    (relay ??= startWriteAheadRelay({
      upstream: v3Upstream,
      ...(config.gatewayHost ? { gateway: config.gatewayHost } : {}),
      beforeWrite: () => durable.checkpoint(),
      onV3Retired: () => (v3RetiredSeen = true),
      ...(state.onStep ? { onStep: state.onStep } : {}),
    }).catch((error: unknown) => {
      relay = undefined;
      throw error;
    }));

  /** The SDK options that reach `protocol` through the relay (or, in the unsafe baseline, directly). */
  const clientOptions = async (protocol: XmtpProtocol): Promise<ClientOptions> => {
    if (protocol === "d14n" && !config.gatewayHost) throw new XmtpV3RetiredError("The installation is on XMTP's decentralized network, but XMTP_GATEWAY_HOST is not set");
    if (state.unsafeWithoutWriteAhead) {
      return protocol === "d14n" ? { ...baseOptions, apiUrl: v3Upstream, gatewayHost: config.gatewayHost! } : { ...baseOptions, apiUrl: v3Upstream };
    }
    const { url, gatewayUrl } = await startRelay();
    if (protocol === "v3") return { ...baseOptions, apiUrl: url };
    // The SDK's lookup before creating a client takes TLS from `env`'s URL, not from `apiUrl`: "local" is the one
    // env whose URL is cleartext, like the relay (libxmtp never calls the V3 host in d14n mode).
    return { ...baseOptions, env: "local", apiUrl: url, gatewayHost: gatewayUrl! };
  };

  const getClient = async (protocol: XmtpProtocol): Promise<Client<unknown>> => {
    try {
      if (open && open.protocol !== protocol) await holder.discard();
      if (open?.released) {
        await open.binding.dbReconnect();
        open.released = false;
      }
      if (!open) {
        await mkdir(config.dbDir, { recursive: true });
        open = { ...(await startClient(signer, await clientOptions(protocol))), protocol };
        state.logger.info("xmtp_client_started", { network: protocol, env: config.env, ...(protocol === "d14n" && config.gatewayHost ? { gateway: config.gatewayHost } : {}) });
      }
    } catch (error) {
      open = undefined;
      throw toXmtpError(error, "client start");
    }
    const { client } = open;
    if (recordedInstallation !== client.installationId) {
      await durable.store
        .recordInstallation({ installationId: client.installationId, inboxId: client.inboxId, address })
        .then(() => (recordedInstallation = client.installationId))
        .catch((error: unknown) => state.logger.warn("xmtp_installation_not_recorded", { error: describeError(error) }));
    }
    return client;
  };

  /**
   * The inbox of an address, read without a client (and without the lease): straight to the network, in the
   * protocol recorded.
   * @throws {import("./port.js").XmtpUnavailableError | import("./port.js").XmtpOperationError}
   */
  const lookupOnNetwork = async (of: Address, operation: string): Promise<string | null> => {
    const gatewayHost = (await currentProtocol(10_000)) === "d14n" ? config.gatewayHost : null;
    try {
      const identifier = { identifier: of, identifierKind: ETHEREUM_IDENTIFIER };
      return (await lookupInboxIdOnNetwork(v3Upstream, gatewayHost, (gatewayHost ?? v3Upstream).startsWith("https:"), identifier)) ?? null;
    } catch (error) {
      throw toXmtpError(error, operation);
    }
  };
  /**
   * How many installations the network lists for the backend inbox (none when the wallet has no inbox). On d14n,
   * libxmtp 1.9.1's client-less inbox-state read insists on TLS (which no local gateway speaks): there the inbox's
   * existence stands for its installations, as it was created with one.
   */
  const countInstallations = async (): Promise<number> => {
    const inboxId = await lookupOnNetwork(address, "installation lookup");
    if (!inboxId) return 0;
    if ((await currentProtocol(10_000)) === "d14n") return 1;
    try {
      const [inbox] = await inboxStatesOnNetwork(v3Upstream, null, [inboxId]);
      return inbox?.installations.length ?? 0;
    } catch (error) {
      throw toXmtpError(error, "installation lookup");
    }
  };

  /**
   * The Ethereum addresses of an inbox, without a client or the lease. On V3 the binding's client-less inbox state
   * (cleartext works there); on d14n libxmtp 1.9.1's equivalent insists on TLS, so the inbox's identity updates are
   * read from a node and replayed here (see inbox-log.ts).
   */
  const inboxAddresses = async (inboxId: string): Promise<Address[]> => {
    if ((await currentProtocol(10_000)) === "d14n" && config.gatewayHost) return d14nInboxAddresses(config.gatewayHost, inboxId);
    try {
      const [inbox] = await inboxStatesOnNetwork(v3Upstream, null, [inboxId]);
      return [
        ...new Set(
          (inbox?.identifiers ?? [])
            .filter((id) => id.identifierKind === ETHEREUM_IDENTIFIER)
            .map((id) => id.identifier.toLowerCase())
            .filter((a): a is Address => v.is(StoredAddressSchema, a)),
        ),
      ];
    } catch (error) {
      // libxmtp's answer for an inbox the network has no identity update of: an inbox that does not exist.
      if (error instanceof Error && /Missing identity update/.test(error.message)) return [];
      throw toXmtpError(error, "inbox addresses");
    }
  };

  return {
    dbPath,
    durable,
    network,
    inboxAddresses,
    get protocol() {
      return open?.protocol ?? null;
    },
    close: async () => {
      await holder.discard();
      await (await relay?.catch(() => undefined))?.close();
    },
    lookupInboxId: (address) => lookupOnNetwork(address, "inbox lookup"),
    withSession: async (work, sessionOptions) => {
      const runWork = async (protocol: XmtpProtocol) => {
        const client = await getClient(protocol);
        const sdk: XmtpSession = { ...sdkSession(client, open!.binding, durable, durable.workDeadline), ...(durable.fence ? { fence: durable.fence } : {}) };
        // On V3, a call that failed because V3 is retired says so, whatever libxmtp made of the refusal.
        const session = protocol === "v3" ? onV3Retirement(sdk, () => v3RetiredSeen, config.gatewayHost !== null) : sdk;
        // A session before this one stopped midway through writing to these groups: the saved state knows
        // the writes (saved first), so syncing each group resolves them (and sends the welcomes they owe).
        for (const groupId of durable.unsettled) {
          if (Date.now() >= durable.workDeadline) break;
          await session.groupHealth(groupId).then(
            () => durable.settle(groupId),
            (error: unknown) => {
              if (error instanceof XmtpGroupNotFoundError) durable.settle(groupId);
              else state.logger.warn("xmtp_unsettled_group", { groupId, error: describeError(error) });
            },
          );
        }
        return work(session);
      };
      const inSession = async () => {
        const protocol = await currentProtocol(0);
        v3RetiredSeen = false;
        let outcome: { ok: true; value: Awaited<ReturnType<typeof work>> } | { ok: false; error: unknown };
        try {
          outcome = { ok: true, value: await runWork(protocol) };
        } catch (error) {
          outcome = { ok: false, error };
        }
        if (protocol === "v3" && v3RetiredSeen) {
          if (!config.gatewayHost) {
            state.logger.error("xmtp_v3_retired", { action: "Set XMTP_GATEWAY_HOST to the URL of this app's XMTP gateway service and redeploy: the installation then moves to XMTP's decentralized network by itself" });
            throw new XmtpV3RetiredError("XMTP's V3 backend refused a write with its retirement message and XMTP_GATEWAY_HOST is not set");
          }
          // XMTP's cutover: the same installation database, a client on the decentralized network, the work once more
          // (what libxmtp's own migration client does). Every instance reads the switch at its next session.
          await network.write("d14n", "V3 answered a write with its retirement message");
          lastKnown = { protocol: "d14n", at: Date.now() };
          state.logger.warn("xmtp_switched_to_d14n", { gateway: config.gatewayHost });
          return runWork("d14n");
        }
        if (!outcome.ok) throw outcome.error;
        return outcome.value;
      };
      try {
        return await durable.run(holder, inSession, {
          savedAhead: !state.unsafeWithoutWriteAhead,
          ...(sessionOptions?.watch ? { watch: sessionOptions.watch } : {}),
          ...(sessionOptions?.deadline ? { deadline: sessionOptions.deadline } : {}),
        });
      } catch (error) {
        if (error instanceof LeaseNotNeededError) throw new SessionNotNeededError(error.message);
        // Another instance holds the installation now (it took over, or this one waited too long for it).
        if (error instanceof LeaseTimeoutError || error instanceof LeaseLostError || error instanceof FencedWriteError) throw new XmtpBusyError(error.message, { cause: error });
        throw error;
      }
    },
  };
}

/**
 * The session with each failure made plain once V3 has answered a write with its retirement message: the work is
 * to be run again on d14n ({@link XmtpNetworkChangedError}) when a gateway is configured, else V3 is simply retired.
 */
function onV3Retirement(session: XmtpSession, retired: () => boolean, canMove: boolean): XmtpSession {
  return mapSessionErrors(session, (error, method) => {
    if (!retired()) return error;
    return canMove
      ? new XmtpNetworkChangedError(`XMTP ${method} refused by the retired V3 backend: moving to d14n`, { cause: error })
      : new XmtpV3RetiredError(`XMTP ${method} refused by the retired V3 backend, and XMTP_GATEWAY_HOST is not set`, { cause: error });
  });
}

/**
 * Creates the SDK client and registers its identity as a second step, so that when registering fails the
 * client that was created (and holds the database open) is released instead of being left behind.
 */
async function startClient(signer: Signer, options: ClientOptions): Promise<{ client: Client<unknown>; binding: BindingClient; released: boolean }> {
  const client: Client<unknown> = await Client.create(signer, { ...options, disableAutoRegister: true });
  const binding = bindingClientOf(client);
  try {
    await client.register();
  } catch (error) {
    binding.releaseDbConnection();
    throw error;
  }
  return { client, binding, released: false };
}

// libxmtp 1.9.1's messages for a group this installation does not have (xmtp_db NotFound::GroupById), and for
// one it was removed from (GroupError::GroupInactive). The binding gives no error codes, only these texts.
const GROUP_NOT_FOUND = /group with id [0-9a-f]* not found/i;
const GROUP_INACTIVE = /Group is inactive/;

/** What a session marks while it writes to a group (see {@link DurableDatabase.unsettle}). */
type WriteMarks = Pick<DurableDatabase, "unsettle" | "settle">;
const NO_MARKS: WriteMarks = { unsettle() {}, settle() {} };

/** The seam's operations over one SDK client (and the binding client inside it). Exported for tests. */
export function sdkSession(client: Client<unknown>, binding: BindingClient, marks: WriteMarks = NO_MARKS, deadline = Date.now() + 25_000): XmtpSession {
  // A group is unsettled from the start of a write to it until the write is confirmed: a checkpoint taken in
  // between names it, so a session after a crash knows which groups to sync first.
  const writing = async <T>(groupId: string, write: () => Promise<T>): Promise<T> => {
    marks.unsettle(groupId);
    const result = await write();
    marks.settle(groupId);
    return result;
  };
  // The SDK's getConversationById answers "not found" for any error (a database failure included),
  // so whether the group exists is asked of the binding, which tells the two apart.
  const existsLocally = (groupId: string): boolean => {
    try {
      binding.conversations().findGroupById(groupId);
      return true;
    } catch (error) {
      if (error instanceof Error && GROUP_NOT_FOUND.test(error.message)) return false;
      throw error;
    }
  };
  const findGroup = async (groupId: string): Promise<Group<unknown> | undefined> => {
    if (!existsLocally(groupId)) {
      // Welcomes not yet processed may hold it.
      await client.conversations.sync();
      if (!existsLocally(groupId)) return undefined;
    }
    const conversation = await client.conversations.getConversationById(groupId);
    if (conversation === undefined) throw new Error(`Group ${groupId} exists on this installation but could not be opened`);
    return conversation instanceof Group ? conversation : undefined;
  };
  /** The group synced from the network; one the backend was removed from is "not found". */
  const group = async (groupId: string): Promise<Group<unknown>> => {
    const found = await findGroup(groupId);
    if (!found) throw new XmtpGroupNotFoundError(groupId);
    try {
      await found.sync();
    } catch (error) {
      if (error instanceof Error && GROUP_INACTIVE.test(error.message)) throw new XmtpGroupNotFoundError(groupId);
      throw error;
    }
    if (!found.isActive) throw new XmtpGroupNotFoundError(groupId);
    return found;
  };
  const info = (g: Group<unknown>): XmtpGroupInfo => ({
    groupId: g.id,
    name: g.name,
    description: g.description,
    imageUrl: g.imageUrl,
    createdAt: g.createdAt,
  });

  // The same error classification as every other implementation of the seam (the test double included).
  return withErrorMapping({
    inboxId: client.inboxId,
    installationId: client.installationId,
    deadline,
    // Only on this installation: the network learns of the group in publishGroup (libxmtp's createGroup does
    // both in one call, and a failed publish there leaves a local group the caller never hears of).
    createGroup: async ({ name, description, imageUrl }) =>
      info(
        client.conversations.createGroupOptimistic({
          permissions: ADMIN_ONLY,
          groupName: name,
          groupDescription: description,
          ...(imageUrl ? { groupImageUrlSquare: imageUrl } : {}),
        }),
      ),
    publishGroup: (groupId) =>
      writing(groupId, async () => {
        const found = await findGroup(groupId);
        if (!found) throw new XmtpGroupNotFoundError(groupId);
        await found.sync();
      }),
    getGroup: async (groupId) => {
      try {
        return info(await group(groupId));
      } catch (error) {
        if (error instanceof XmtpGroupNotFoundError) return null;
        throw error;
      }
    },
    groupHealth: async (groupId) => {
      const debug = await (await group(groupId)).debugInfo();
      return { epoch: Number(debug.epoch), maybeForked: debug.maybeForked, commitLogForked: debug.isCommitLogForked ?? null };
    },
    listMembers: async (groupId) =>
      (await (await group(groupId)).members()).map(
        (m): XmtpMember => ({
          inboxId: m.inboxId,
          // From the network: only well-formed Ethereum addresses are taken.
          addresses: m.accountIdentifiers
            .filter((id) => id.identifierKind === ETHEREUM_IDENTIFIER)
            .map((id) => id.identifier.toLowerCase())
            .filter((address): address is Address => v.is(StoredAddressSchema, address)),
          isAdmin: m.permissionLevel !== MEMBER_LEVEL,
        }),
      ),
    addMembers: (groupId, inboxIds) => writing(groupId, async () => (await group(groupId)).addMembers([...inboxIds])),
    removeMembers: (groupId, inboxIds) => writing(groupId, async () => (await group(groupId)).removeMembers([...inboxIds])),
    updateGroup: (groupId, changes) =>
      writing(groupId, async () => {
        const g = await group(groupId);
        if (changes.name !== undefined) await g.updateName(changes.name);
        if (changes.description !== undefined) await g.updateDescription(changes.description);
        if (changes.imageUrl !== undefined) await g.updateImageUrl(changes.imageUrl);
      }),
    sendText: (groupId, text) => writing(groupId, async () => (await group(groupId)).sendText(text)),
    // createDm finds the conversation or creates and publishes it; the send is then marked like any group write.
    sendDirectMessage: async (inboxId, text) => {
      const dm = await client.conversations.createDm(inboxId);
      return writing(dm.id, () => dm.sendText(text));
    },
    listMessages: async (groupId, { limit, before }) =>
      (
        await (
          await group(groupId)
        ).messages({
          limit,
          direction: DESCENDING,
          ...(before ? { sentBeforeNs: BigInt(before.getTime()) * 1_000_000n } : {}),
        })
      ).map(toMessage),
  });
}

function toMessage(m: DecodedMessage<unknown>): XmtpMessage {
  return {
    id: m.id,
    senderInboxId: m.senderInboxId,
    sentAt: m.sentAt,
    text: typeof m.content === "string" ? m.content : (m.fallback ?? null),
    kind: m.kind === MEMBERSHIP_CHANGE ? "membership-change" : "application",
  };
}
