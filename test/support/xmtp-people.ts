import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Client, Group, type ClientOptions } from "@xmtp/node-sdk";
import { inject } from "vitest";
import type { XmtpProtocol } from "../../lib/config.js";
import type { Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { nodeRequest } from "../../local/xmtp-node/launcher.js";
import type { NodeFault } from "../../local/xmtp-node/xmtp-node.js";
import { bindingClientOf } from "../../lib/xmtp/node-sdk-adapter.js";
import type { Address } from "../../lib/shared/address.js";
import { createWalletSigner } from "../../lib/xmtp/signer.js";

/** Someone with a wallet and their own real XMTP client on the local node (as if they had opened an XMTP app). */
export interface Person {
  readonly address: Address;
  readonly key: Hex;
  readonly inboxId: string;
  readonly client: Client<unknown>;
  /** The group as this person's own client sees it (welcomes and the group synced), or null when they are not in it. */
  group(groupId: string): Promise<Group<unknown> | null>;
  /** Member inbox ids of the group as this person's client sees it. */
  memberInboxIds(groupId: string): Promise<string[]>;
  /** The same installation (same database) with a new client on `network`: what an app does when it moves to d14n. */
  reopen(network: PersonNetwork): Promise<void>;
  close(): Promise<void>;
}

/** Which of XMTP's protocols the tests and benchmarks run on (`XMTP_PROTOCOLS=v3` or `=d14n` narrows a run to one). */
export const PROTOCOLS: readonly XmtpProtocol[] = (process.env.XMTP_PROTOCOLS?.split(",") ?? ["v3", "d14n"]).filter((p): p is XmtpProtocol => p === "v3" || p === "d14n");

/** Where a person's client connects: the shared local node in either protocol, or a node of a test's own. */
export interface PersonNetwork {
  readonly protocol?: XmtpProtocol;
  /** A V3 API other than the shared node's. */
  readonly apiUrl?: string;
  /** A d14n gateway other than the shared node's. */
  readonly gatewayHost?: string;
}

/** The SDK options that reach `network`. */
export function personClientOptions(network: PersonNetwork = {}): Pick<ClientOptions, "env" | "apiUrl" | "gatewayHost"> {
  return {
    env: "local",
    ...(network.apiUrl ? { apiUrl: network.apiUrl } : {}),
    ...(network.protocol === "d14n" ? { gatewayHost: network.gatewayHost ?? inject("xmtpGateway") } : {}),
  };
}

/** A new wallet registered on the local XMTP node with a client of its own. */
export async function createPerson(network: PersonNetwork = {}, key: Hex = generatePrivateKey()): Promise<Person> {
  const { signer, address } = createWalletSigner(key);
  const dir = await mkdtemp(join(tmpdir(), "xmtp-person-"));
  const dbEncryptionKey = randomBytes(32);
  const open = (on: PersonNetwork): Promise<Client<unknown>> =>
    Client.create(signer, { ...personClientOptions(on), dbPath: join(dir, "person.db3"), dbEncryptionKey, disableDeviceSync: true, appVersion: "test-person/1" });
  let client = await open(network);
  const group = async (groupId: string) => {
    await client.conversations.sync();
    const conversation = await client.conversations.getConversationById(groupId);
    if (!(conversation instanceof Group)) return null;
    // A group this person was removed from is still there, inactive; libxmtp refuses to sync it.
    await conversation.sync().catch((error: unknown) => {
      if (!(error instanceof Error && /Group is inactive/.test(error.message))) throw error;
    });
    return conversation;
  };
  return {
    address,
    key,
    inboxId: client.inboxId,
    get client() {
      return client;
    },
    group,
    memberInboxIds: async (groupId) => {
      const g = await group(groupId);
      return g ? (await g.members()).map((m) => m.inboxId).sort() : [];
    },
    reopen: async (on) => {
      bindingClientOf(client).releaseDbConnection();
      client = await open(on);
    },
    close: async () => {
      bindingClientOf(client).releaseDbConnection();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A wallet that has never used XMTP (no inbox on the node). */
export function walletWithoutInbox(): Address {
  return privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
}

/** Arms failures on the shared local node for calls from clients with `appVersion` (see {@link NodeFault}). */
export async function injectFaults(appVersion: string, faults: Omit<NodeFault, "appVersion">[]): Promise<void> {
  await nodeRequest("/control", { body: { faults: faults.map((f) => ({ ...f, appVersion })) } });
}

/** Removes whatever failures are still armed for `appVersion`. */
export async function clearFaults(appVersion: string): Promise<void> {
  await nodeRequest("/control", { body: { clearFaults: appVersion } });
}

/** How many messages and commits the node holds for a group. */
export async function nodeGroupStats(groupId: string): Promise<{ messages: number; commits: number }> {
  return (await nodeRequest<{ group: { messages: number; commits: number } }>(`/stats?group=${groupId}`)).group;
}

/** Calls the shared local node served to one client (`x-app-version`), by full gRPC path. */
export async function nodeCallsOf(appVersion: string): Promise<Record<string, number>> {
  return (await nodeRequest<{ callsByPath: Record<string, number> }>(`/stats?appVersion=${encodeURIComponent(appVersion)}`)).callsByPath;
}
