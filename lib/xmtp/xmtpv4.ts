import type { MessageSchema } from "./protobuf-wire.js";

/**
 * The messages of XMTP's decentralized API (`xmtp.xmtpv4`) that this project reads or writes, as field tables for
 * `protobuf-wire.ts`. Field numbers are xmtp/proto's `proto/xmtpv4/{envelopes,payer_api,message_api}`. The client's
 * own payloads inside a ClientEnvelope (`xmtp.mls.api.v1` and `xmtp.identity.associations` messages) are kept as
 * raw bytes here: an embedded message and a bytes field look the same on the wire, and `@xmtp/proto` decodes them.
 */

/** `Cursor`: the newest sequence id seen per originator. */
export const Cursor = { nodeIdToSequenceId: { no: 1, type: { map: ["uint32", "uint64"] } } } as const satisfies MessageSchema;
export interface CursorMessage {
  nodeIdToSequenceId: Map<number, bigint>;
}

export const AuthenticatedData = { targetTopic: { no: 2, type: "bytes" }, dependsOn: { no: 3, type: Cursor } } as const satisfies MessageSchema;

/** `ClientEnvelope`: what a client publishes (one payload of the oneof). */
export const ClientEnvelope = {
  aad: { no: 1, type: AuthenticatedData },
  groupMessage: { no: 2, type: "bytes", present: true },
  welcomeMessage: { no: 3, type: "bytes", present: true },
  uploadKeyPackage: { no: 4, type: "bytes", present: true },
  identityUpdate: { no: 5, type: "bytes", present: true },
} as const satisfies MessageSchema;
export interface ClientEnvelopeMessage {
  aad?: { targetTopic: Uint8Array; dependsOn?: CursorMessage };
  groupMessage?: Uint8Array;
  welcomeMessage?: Uint8Array;
  uploadKeyPackage?: Uint8Array;
  identityUpdate?: Uint8Array;
}

export const PayerEnvelope = {
  unsignedClientEnvelope: { no: 1, type: "bytes" },
  targetOriginator: { no: 3, type: "uint32" },
  messageRetentionDays: { no: 4, type: "uint32" },
} as const satisfies MessageSchema;

export const UnsignedOriginatorEnvelope = {
  originatorNodeId: { no: 1, type: "uint32" },
  originatorSequenceId: { no: 2, type: "uint64" },
  originatorNs: { no: 3, type: "int64" },
  payerEnvelopeBytes: { no: 4, type: "bytes" },
  baseFeePicodollars: { no: 5, type: "uint64" },
  congestionFeePicodollars: { no: 6, type: "uint64" },
  expiryUnixtime: { no: 7, type: "uint64" },
} as const satisfies MessageSchema;
export interface UnsignedOriginatorEnvelopeMessage {
  originatorNodeId: number;
  originatorSequenceId: bigint;
  originatorNs: bigint;
  payerEnvelopeBytes: Uint8Array;
}

/** `OriginatorEnvelope`; the proof (a signature or a blockchain proof) is not modelled: clients do not check it. */
export const OriginatorEnvelope = { unsignedOriginatorEnvelope: { no: 1, type: "bytes" } } as const satisfies MessageSchema;

export const PublishClientEnvelopesRequest = { envelopes: { no: 1, type: ClientEnvelope, repeated: true } } as const satisfies MessageSchema;
export const PublishClientEnvelopesResponse = { originatorEnvelopes: { no: 1, type: OriginatorEnvelope, repeated: true } } as const satisfies MessageSchema;

/** `GetNodesResponse`: node id → the node's URL. */
export const GetNodesResponse = { nodes: { no: 1, type: { map: ["uint32", "string"] } } } as const satisfies MessageSchema;
export interface GetNodesResponseMessage {
  nodes: Map<number, string>;
}

export const EnvelopesQuery = {
  topics: { no: 1, type: "bytes", repeated: true },
  originatorNodeIds: { no: 2, type: "uint32", repeated: true },
  lastSeen: { no: 3, type: Cursor },
} as const satisfies MessageSchema;
export interface EnvelopesQueryMessage {
  topics: Uint8Array[];
  originatorNodeIds: number[];
  lastSeen?: CursorMessage;
}

export const QueryEnvelopesRequest = { query: { no: 1, type: EnvelopesQuery }, limit: { no: 2, type: "uint32" } } as const satisfies MessageSchema;
export const QueryEnvelopesResponse = { envelopes: { no: 1, type: OriginatorEnvelope, repeated: true } } as const satisfies MessageSchema;
export const SubscribeEnvelopesRequest = { query: { no: 1, type: EnvelopesQuery } } as const satisfies MessageSchema;
export const SubscribeEnvelopesResponse = { envelopes: { no: 1, type: OriginatorEnvelope, repeated: true } } as const satisfies MessageSchema;

export const GetNewestEnvelopeRequest = { topics: { no: 1, type: "bytes", repeated: true } } as const satisfies MessageSchema;
export const GetNewestEnvelopeResponse = {
  results: { no: 1, type: { originatorEnvelope: { no: 1, type: OriginatorEnvelope, present: true } }, repeated: true },
} as const satisfies MessageSchema;

export const GetInboxIdsRequest = {
  requests: { no: 1, type: { identifier: { no: 1, type: "string" }, identifierKind: { no: 2, type: "enum" } }, repeated: true },
} as const satisfies MessageSchema;
export const GetInboxIdsResponse = {
  responses: { no: 1, type: { identifier: { no: 1, type: "string" }, inboxId: { no: 2, type: "string", present: true }, identifierKind: { no: 3, type: "enum" } }, repeated: true },
} as const satisfies MessageSchema;

/** `grpc.health.v1.HealthCheckResponse`: status 1 is SERVING. */
export const HealthCheckResponse = { status: { no: 1, type: "enum" } } as const satisfies MessageSchema;

/** Topic kinds: the first byte of a d14n topic, followed by the id (libxmtp `TopicKind`). */
export const TOPIC_KIND = { groupMessages: 0, welcomeMessages: 1, identityUpdates: 2, keyPackages: 3 } as const;

/** Where libxmtp expects each kind of envelope to come from (libxmtp `Originators`); V3 history keeps its V3 ids under these. */
export const ORIGINATOR = { mlsCommits: 0, inboxLog: 1, applicationMessages: 10, welcomeMessages: 11, keyPackages: 13 } as const;
