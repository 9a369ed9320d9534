import { connect, type IncomingHttpHeaders } from "node:http2";
import * as v from "valibot";
import { StoredAddressSchema, type Address } from "../shared/address.js";
import { frame, GRPC_STATUS, readFrames } from "./grpc-wire.js";
import { GET_NODES } from "./networks.js";
import { XmtpUnavailableError } from "./port.js";
import { decodeMessage, encodeMessage, type MessageSchema } from "./protobuf-wire.js";
import {
  ClientEnvelope,
  GetNodesResponse,
  PayerEnvelope,
  QueryEnvelopesRequest,
  QueryEnvelopesResponse,
  TOPIC_KIND,
  UnsignedOriginatorEnvelope,
  type ClientEnvelopeMessage,
  type CursorMessage,
  type GetNodesResponseMessage,
  type UnsignedOriginatorEnvelopeMessage,
} from "./xmtpv4.js";

// xmtp.identity.associations (xmtp/proto identity/associations/association.proto): only what names members.
const MemberIdentifier = { ethereumAddress: { no: 1, type: "string", present: true } } as const satisfies MessageSchema;
const CreateInbox = { initialIdentifier: { no: 1, type: "string" }, initialIdentifierKind: { no: 4, type: "enum" } } as const satisfies MessageSchema;
const AddAssociation = { newMemberIdentifier: { no: 1, type: MemberIdentifier } } as const satisfies MessageSchema;
const RevokeAssociation = { memberToRevoke: { no: 1, type: MemberIdentifier } } as const satisfies MessageSchema;
const IdentityAction = {
  createInbox: { no: 1, type: CreateInbox },
  add: { no: 2, type: AddAssociation },
  revoke: { no: 3, type: RevokeAssociation },
} as const satisfies MessageSchema;
const IdentityUpdate = { actions: { no: 1, type: IdentityAction, repeated: true }, inboxId: { no: 3, type: "string" } } as const satisfies MessageSchema;

interface IdentityActionMessage {
  createInbox?: { initialIdentifier: string; initialIdentifierKind: number };
  add?: { newMemberIdentifier?: { ethereumAddress?: string } };
  revoke?: { memberToRevoke?: { ethereumAddress?: string } };
}

// IdentifierKind: 0 (unspecified, what updates made before passkeys carry) and 1 are Ethereum; 2 is a passkey.
const ETHEREUM_KINDS = new Set([0, 1]);
/** Envelopes asked per page; an inbox has at most 256 identity updates in its life. */
const PAGE = 100;

/**
 * Replays an inbox's identity updates (in log order) into the Ethereum addresses it holds now: the creating
 * wallet, each wallet added, minus each wallet revoked. Installations and passkeys are not addresses; revoking a
 * wallet revokes the installations it added, never other wallets (libxmtp's association rules), so a set suffices.
 */
export function addressesFromLog(updates: readonly Uint8Array[]): Address[] {
  const held = new Set<Address>();
  const ethereum = (raw: string | undefined): Address | null => {
    const address = raw?.toLowerCase();
    return v.is(StoredAddressSchema, address) ? address : null;
  };
  for (const bytes of updates) {
    for (const action of decodeMessage<{ actions: IdentityActionMessage[] }>(IdentityUpdate, bytes).actions) {
      if (action.createInbox && ETHEREUM_KINDS.has(action.createInbox.initialIdentifierKind)) {
        const address = ethereum(action.createInbox.initialIdentifier);
        if (address) held.add(address);
      }
      const added = ethereum(action.add?.newMemberIdentifier?.ethereumAddress);
      if (added) held.add(added);
      const revoked = ethereum(action.revoke?.memberToRevoke?.ethereumAddress);
      if (revoked) held.delete(revoked);
    }
  }
  return [...held];
}

/**
 * One unary gRPC call over HTTP/2 (TLS for an `https` URL, cleartext for `http`), without a client.
 * @throws {XmtpUnavailableError} unreachable, timed out, or answered with a non-OK status.
 */
async function unary(url: string, path: string, request: Uint8Array, timeoutMs: number): Promise<Buffer> {
  const session = connect(new URL(url).origin);
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const fail = (why: string, cause?: unknown) => reject(new XmtpUnavailableError(`XMTP ${path} failed: ${why}`, cause ? { cause } : undefined));
      const timer = setTimeout(() => fail("timed out"), timeoutMs);
      session.once("error", (error) => fail("unreachable", error));
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
      const parts: Buffer[] = [];
      let status: string | undefined;
      stream.on("response", (headers) => (status ??= headers["grpc-status"] as string | undefined));
      stream.on("trailers", (trailers: IncomingHttpHeaders) => (status = trailers["grpc-status"] as string | undefined));
      stream.on("data", (chunk: Buffer) => parts.push(chunk));
      stream.once("error", (error) => fail("stream error", error));
      stream.once("end", () => {
        clearTimeout(timer);
        if (status !== String(GRPC_STATUS.ok)) return fail(`grpc-status ${status ?? "missing"}`);
        try {
          resolve(readFrames(Buffer.concat(parts))[0] ?? Buffer.alloc(0));
        } catch (error) {
          fail("malformed answer", error);
        }
      });
      stream.end(frame(request));
    });
  } finally {
    session.close();
  }
}

/**
 * The Ethereum addresses linked to an inbox now, read on XMTP's decentralized network without a client: the nodes
 * the gateway names (`GetNodes`), then the inbox's identity-update topic (`0x02 ‖ inbox id`) with `QueryEnvelopes`,
 * paged by cursor, each envelope opened down to its `IdentityUpdate`. Signatures are not checked here: the network
 * checks identity updates before it takes them (libxmtp checks them again; this only lists members).
 * @throws {XmtpUnavailableError} the gateway or every node failed, or an answer does not decode.
 */
export async function d14nInboxAddresses(gatewayHost: string, inboxId: string, options: { timeoutMs?: number } = {}): Promise<Address[]> {
  const timeoutMs = options.timeoutMs ?? 8000;
  const { nodes } = decodeMessage<GetNodesResponseMessage>(GetNodesResponse, await unary(gatewayHost, GET_NODES, new Uint8Array(), timeoutMs));
  const urls = [...nodes].sort(([a], [b]) => a - b).map(([, url]) => url);
  if (urls.length === 0) throw new XmtpUnavailableError("XMTP GetNodes named no node");
  const topic = Uint8Array.from([TOPIC_KIND.identityUpdates, ...Buffer.from(inboxId, "hex")]);
  let lastError: unknown;
  for (const url of urls) {
    try {
      const updates: { node: number; sequence: bigint; update: Uint8Array }[] = [];
      const cursor: CursorMessage = { nodeIdToSequenceId: new Map() };
      for (;;) {
        const request = encodeMessage(QueryEnvelopesRequest, { query: { topics: [topic], originatorNodeIds: [], lastSeen: cursor }, limit: PAGE });
        const { envelopes } = decodeMessage<{ envelopes: { unsignedOriginatorEnvelope: Uint8Array }[] }>(
          QueryEnvelopesResponse,
          await unary(url, "/xmtp.xmtpv4.message_api.ReplicationApi/QueryEnvelopes", request, timeoutMs),
        );
        for (const envelope of envelopes) {
          const unsigned = decodeMessage<UnsignedOriginatorEnvelopeMessage>(UnsignedOriginatorEnvelope, envelope.unsignedOriginatorEnvelope);
          const payer = decodeMessage<{ unsignedClientEnvelope: Uint8Array }>(PayerEnvelope, unsigned.payerEnvelopeBytes);
          const client = decodeMessage<ClientEnvelopeMessage>(ClientEnvelope, payer.unsignedClientEnvelope);
          if (client.identityUpdate) updates.push({ node: unsigned.originatorNodeId, sequence: unsigned.originatorSequenceId, update: client.identityUpdate });
          const seen = cursor.nodeIdToSequenceId.get(unsigned.originatorNodeId) ?? 0n;
          if (unsigned.originatorSequenceId > seen) cursor.nodeIdToSequenceId.set(unsigned.originatorNodeId, unsigned.originatorSequenceId);
        }
        if (envelopes.length < PAGE) break;
      }
      // The inbox log is ordered by originator then sequence id, as the nodes serve it and libxmtp applies it.
      updates.sort((a, b) => a.node - b.node || (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0));
      return addressesFromLog(updates.map((u) => u.update));
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError instanceof XmtpUnavailableError ? lastError : new XmtpUnavailableError("XMTP inbox log could not be read", { cause: lastError });
}
