/**
 * The local node's decentralized-network (d14n) face: the gateway's `PayerApi` (GetNodes, PublishClientEnvelopes)
 * and a node's `ReplicationApi` (QueryEnvelopes, GetNewestEnvelope, GetInboxIds, SubscribeEnvelopes) over the same
 * store the V3 API serves, so that what was written over V3 is read over d14n and the other way round, as after
 * XMTP's migration of V3 history.
 *
 * Envelopes: everything is stored once, in the V3 form plus (when published over d14n) the client's ClientEnvelope
 * bytes. Served over d14n, each item is an OriginatorEnvelope whose originator is the one libxmtp expects for its
 * kind (commits 0, identity updates 1, application messages 10, welcomes 11, key packages 13) and whose sequence id
 * is the store's id: V3 history keeps its V3 ids, and new envelopes continue above them.
 *
 * Not checked here (beyond what the V3 face does not check either): payer and originator signatures (none are
 * made: envelopes carry no proof), payer accounting and fees, message retention, `depends_on` ordering,
 * blockchain-ordered commits and identity updates (the app chain), node registry and replication.
 */
import type { ServerHttp2Stream } from "node:http2";
import { decodeMessage, encodeMessage } from "../../lib/xmtp/protobuf-wire.js";
import {
  ClientEnvelope,
  GetInboxIdsRequest,
  GetInboxIdsResponse,
  GetNewestEnvelopeRequest,
  GetNewestEnvelopeResponse,
  GetNodesResponse,
  HealthCheckResponse,
  ORIGINATOR,
  PayerEnvelope,
  PublishClientEnvelopesRequest,
  PublishClientEnvelopesResponse,
  QueryEnvelopesRequest,
  QueryEnvelopesResponse,
  SubscribeEnvelopesRequest,
  SubscribeEnvelopesResponse,
  TOPIC_KIND,
  UnsignedOriginatorEnvelope,
  type ClientEnvelopeMessage,
  type EnvelopesQueryMessage,
} from "../../lib/xmtp/xmtpv4.js";
import { frame, GRPC_STATUS, startResponse, finishResponse } from "../../lib/xmtp/grpc-wire.js";
import type { XmtpCodecs } from "./codecs.js";
import { NodeRequestError, type NodeState, type StoredGroupMessage, type StoredIdentityUpdate, type StoredKeyPackage, type StoredWelcome } from "./node-state.js";

/** The node id this node answers GetNodes with (xmtpd's node ids are multiples of 100). */
export const LOCAL_NODE_ID = 100;
/** The most envelopes one QueryEnvelopes answers (xmtpd's `maxRequestedRows`; a limit of 0 means this many). */
export const MAX_QUERY_LIMIT = 1000;

const PAYER = "/xmtp.xmtpv4.payer_api.PayerApi/";
const REPLICATION = "/xmtp.xmtpv4.message_api.ReplicationApi/";

type Unary = (request: Uint8Array) => Uint8Array;

/** An item of the store as one d14n envelope: where it comes from, its place, and its ClientEnvelope. */
interface Served {
  readonly originator: number;
  readonly sequenceId: number;
  readonly ns: number;
  readonly topic: Uint8Array;
  readonly clientEnvelope: Uint8Array;
}

const topicOf = (kind: number, id: Uint8Array): Uint8Array => Buffer.concat([Buffer.from([kind]), id]);
const hexId = (inboxId: string): Uint8Array => Buffer.from(inboxId, "hex");

/** The d14n face of a node over `state`. */
export function d14nServices(c: XmtpCodecs, state: NodeState, nodeUrl: () => string) {
  const synthesize = (topic: Uint8Array, payload: Partial<ClientEnvelopeMessage>): Uint8Array =>
    encodeMessage(ClientEnvelope, { aad: { targetTopic: topic }, ...payload });

  const servedGroupMessage = (m: StoredGroupMessage): Served => {
    const topic = topicOf(TOPIC_KIND.groupMessages, m.groupId);
    return {
      originator: m.isCommit ? ORIGINATOR.mlsCommits : ORIGINATOR.applicationMessages,
      sequenceId: m.id,
      ns: m.createdNs,
      topic,
      clientEnvelope:
        m.clientEnvelope ??
        synthesize(topic, { groupMessage: c.GroupMessageInput.encode(c.GroupMessageInput.fromPartial({ v1: { data: m.data, senderHmac: m.senderHmac, shouldPush: m.shouldPush } })).finish() }),
    };
  };
  const servedWelcome = (w: StoredWelcome): Served => {
    const topic = topicOf(TOPIC_KIND.welcomeMessages, w.installationKey);
    return {
      originator: ORIGINATOR.welcomeMessages,
      sequenceId: w.id,
      ns: w.createdNs,
      topic,
      clientEnvelope: w.clientEnvelope ?? synthesize(topic, { welcomeMessage: c.WelcomeMessageInput.encode(c.WelcomeMessageInput.fromPartial(w.input)).finish() }),
    };
  };
  const servedIdentityUpdate = (u: StoredIdentityUpdate): Served => {
    const topic = topicOf(TOPIC_KIND.identityUpdates, hexId(u.update.inboxId));
    return {
      originator: ORIGINATOR.inboxLog,
      sequenceId: u.sequenceId,
      ns: u.serverTimestampNs,
      topic,
      clientEnvelope: u.clientEnvelope ?? synthesize(topic, { identityUpdate: c.IdentityUpdate.encode(u.update).finish() }),
    };
  };
  const servedKeyPackage = (k: StoredKeyPackage): Served => {
    const topic = topicOf(TOPIC_KIND.keyPackages, k.installationKey);
    return {
      originator: ORIGINATOR.keyPackages,
      sequenceId: k.id,
      ns: k.createdNs,
      topic,
      clientEnvelope:
        k.clientEnvelope ??
        synthesize(topic, {
          uploadKeyPackage: c.UploadKeyPackageRequest.encode(c.UploadKeyPackageRequest.fromPartial({ keyPackage: { keyPackageTlsSerialized: k.keyPackage }, isInboxIdCredential: false })).finish(),
        }),
    };
  };

  const originatorEnvelope = (s: Served) => ({
    unsignedOriginatorEnvelope: encodeMessage(UnsignedOriginatorEnvelope, {
      originatorNodeId: s.originator,
      originatorSequenceId: BigInt(s.sequenceId),
      // Nanoseconds that increase in publish order (libxmtp sorts by them before its causal sort): the store's
      // millisecond, and the store's id within it.
      originatorNs: BigInt(Math.round(s.ns / 1e6)) * 1_000_000n + BigInt(s.sequenceId % 1_000_000),
      payerEnvelopeBytes: encodeMessage(PayerEnvelope, { unsignedClientEnvelope: s.clientEnvelope, targetOriginator: LOCAL_NODE_ID }),
    }),
  });

  /** Everything stored on a topic, oldest first. */
  const itemsOn = (topic: Uint8Array): Served[] => {
    const kind = topic[0];
    const id = topic.subarray(1);
    if (kind === TOPIC_KIND.groupMessages) return state.groupMessagesOf(id).map(servedGroupMessage);
    if (kind === TOPIC_KIND.welcomeMessages) return state.welcomesOf(id).map(servedWelcome);
    if (kind === TOPIC_KIND.identityUpdates) return state.identityLogOf(Buffer.from(id).toString("hex")).map(servedIdentityUpdate);
    if (kind === TOPIC_KIND.keyPackages) {
      const kp = state.keyPackageOf(id);
      return kp ? [servedKeyPackage(kp)] : [];
    }
    throw new NodeRequestError(GRPC_STATUS.invalidArgument, `unknown topic kind ${String(kind)}`);
  };
  const seen = (query: EnvelopesQueryMessage, s: Served): boolean => s.sequenceId <= Number(query.lastSeen?.nodeIdToSequenceId.get(s.originator) ?? 0n);
  const matching = (query: EnvelopesQueryMessage): Served[] => {
    if (query.topics.length === 0) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "a query needs topics (originator queries are not served here)");
    return query.topics
      .flatMap(itemsOn)
      .filter((s) => !seen(query, s))
      // xmtpd's order: by originator, then sequence id (commits, on originator 0, come before what depends on them).
      .sort((a, b) => a.originator - b.originator || a.sequenceId - b.sequenceId);
  };

  const publish = (envelopeBytes: Uint8Array, e: ClientEnvelopeMessage): Served => {
    const topic = e.aad?.targetTopic;
    if (!topic || topic.length < 2) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "envelope has no target topic");
    if (e.groupMessage) {
      const input = c.GroupMessageInput.decode(e.groupMessage);
      if (!input.v1) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "invalid group message");
      const [stored] = state.sendGroupMessages([{ ...input.v1, clientEnvelope: envelopeBytes }]);
      return servedGroupMessage(stored!);
    }
    if (e.welcomeMessage) {
      const [stored] = state.sendWelcomes([c.WelcomeMessageInput.decode(e.welcomeMessage)], [envelopeBytes]);
      return servedWelcome(stored!);
    }
    if (e.uploadKeyPackage) {
      const keyPackage = c.UploadKeyPackageRequest.decode(e.uploadKeyPackage).keyPackage;
      if (!keyPackage) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "no key package");
      return servedKeyPackage(state.uploadKeyPackage(keyPackage.keyPackageTlsSerialized, envelopeBytes));
    }
    if (e.identityUpdate) {
      const update = c.IdentityUpdate.decode(e.identityUpdate);
      if (!update.inboxId) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "IdentityUpdate is required");
      return servedIdentityUpdate(state.publishIdentityUpdate(update, envelopeBytes));
    }
    throw new NodeRequestError(GRPC_STATUS.invalidArgument, "envelope has no payload this node stores");
  };

  const unary: Record<string, Unary> = {
    [`${PAYER}GetNodes`]: () => encodeMessage(GetNodesResponse, { nodes: new Map([[LOCAL_NODE_ID, nodeUrl()]]) }),
    [`${PAYER}PublishClientEnvelopes`]: (bytes) => {
      const { envelopes } = decodeMessage<{ envelopes: ClientEnvelopeMessage[] }>(PublishClientEnvelopesRequest, bytes);
      if (envelopes.length === 0) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "no envelopes to publish");
      // Read every envelope before storing any (a batch with one bad envelope stores nothing), keeping the bytes as sent.
      const raw = decodeMessage<{ envelopes: Uint8Array[] }>({ envelopes: { no: 1, type: "bytes", repeated: true } }, bytes).envelopes;
      const checked = envelopes.map((e, i) => {
        if (e.groupMessage && !c.GroupMessageInput.decode(e.groupMessage).v1) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "invalid group message");
        return [raw[i]!, e] as const;
      });
      const served = checked.map(([envelopeBytes, e]) => publish(envelopeBytes, e));
      return encodeMessage(PublishClientEnvelopesResponse, { originatorEnvelopes: served.map(originatorEnvelope) });
    },
    [`${REPLICATION}QueryEnvelopes`]: (bytes) => {
      const request = decodeMessage<{ query?: EnvelopesQueryMessage; limit: number }>(QueryEnvelopesRequest, bytes);
      if (!request.query) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "missing query");
      const limit = request.limit > 0 && request.limit <= MAX_QUERY_LIMIT ? request.limit : MAX_QUERY_LIMIT;
      return encodeMessage(QueryEnvelopesResponse, { envelopes: matching(request.query).slice(0, limit).map(originatorEnvelope) });
    },
    [`${REPLICATION}GetNewestEnvelope`]: (bytes) => {
      const { topics } = decodeMessage<{ topics: Uint8Array[] }>(GetNewestEnvelopeRequest, bytes);
      const results = topics.map((topic) => {
        const newest = itemsOn(topic).at(-1);
        return newest ? { originatorEnvelope: originatorEnvelope(newest) } : {};
      });
      return encodeMessage(GetNewestEnvelopeResponse, { results });
    },
    [`${REPLICATION}GetInboxIds`]: (bytes) => {
      const { requests } = decodeMessage<{ requests: { identifier: string; identifierKind: number }[] }>(GetInboxIdsRequest, bytes);
      const responses = requests.map((r) => {
        const inboxId = state.inboxIdOf(r.identifier);
        return { identifier: r.identifier, identifierKind: r.identifierKind, ...(inboxId ? { inboxId } : {}) };
      });
      return encodeMessage(GetInboxIdsResponse, { responses });
    },
    "/grpc.health.v1.Health/Check": () => encodeMessage(HealthCheckResponse, { status: 1 }),
  };

  /** SubscribeEnvelopes: what is stored after the cursor on the query's topics, oldest first, then every new one. */
  const subscribe = (stream: ServerHttp2Stream, request: Uint8Array, streams: Set<() => void>): void => {
    const { query } = decodeMessage<{ query?: EnvelopesQueryMessage }>(SubscribeEnvelopesRequest, request);
    if (!query || query.topics.length === 0) {
      finishResponse(stream, GRPC_STATUS.invalidArgument, "a subscription needs topics");
      return;
    }
    const wanted = new Set(query.topics.map((t) => Buffer.from(t).toString("hex")));
    const highWater = new Map<number, number>();
    const send = (items: Served[]) => {
      const fresh = items.filter((s) => !seen(query, s) && (highWater.get(s.originator) ?? 0) < s.sequenceId);
      if (fresh.length === 0 || stream.destroyed) return;
      for (const s of fresh) highWater.set(s.originator, Math.max(highWater.get(s.originator) ?? 0, s.sequenceId));
      stream.write(frame(encodeMessage(SubscribeEnvelopesResponse, { envelopes: fresh.map(originatorEnvelope) })));
    };
    const onItem = (s: Served) => {
      if (wanted.has(Buffer.from(s.topic).toString("hex"))) send([s]);
    };
    startResponse(stream);
    // xmtpd answers an empty response at once (tonic clients treat the stream as open from there).
    stream.write(frame(encodeMessage(SubscribeEnvelopesResponse, { envelopes: [] })));
    const stops = [
      state.onGroupMessage((m) => onItem(servedGroupMessage(m))),
      state.onWelcome((w) => onItem(servedWelcome(w))),
      state.onIdentityUpdate((u) => onItem(servedIdentityUpdate(u))),
      state.onKeyPackage((k) => onItem(servedKeyPackage(k))),
    ];
    // Catch-up only when the client said where it is (xmtpd's rule); an absent cursor means live only.
    if (query.lastSeen) send(matching(query));
    keepOpen(stream, () => stops.forEach((s) => s()), streams);
  };

  return { unary, subscribe, subscribePath: `${REPLICATION}SubscribeEnvelopes`, publishPath: `${PAYER}PublishClientEnvelopes` };
}

/**
 * Keeps a subscription's stream open until the client leaves (then `stop`) or the node shuts down (then the stream
 * ends UNAVAILABLE); `streams` holds what the node calls at shutdown.
 */
export function keepOpen(stream: ServerHttp2Stream, stop: () => void, streams: Set<() => void>): void {
  const end = () => {
    stop();
    streams.delete(end);
    finishResponse(stream, GRPC_STATUS.unavailable, "local node shutting down");
  };
  streams.add(end);
  stream.once("close", () => {
    stop();
    streams.delete(end);
  });
}

/** gRPC paths served by the gateway, and by a node. */
export const GATEWAY_PREFIXES = [PAYER, "/grpc.health.v1.Health/"];
export const NODE_PREFIXES = [REPLICATION, "/grpc.health.v1.Health/"];
