/**
 * A local stand-in for XMTP's network, for tests, benchmarks and `npm run dev`: the real `@xmtp/node-sdk` client
 * talks to it as to the network. It serves both of XMTP's protocols over one store: the V3 API (`env: "local"` is
 * `http://localhost:5556`: gRPC over cleartext HTTP/2) and, when asked, the decentralized network (d14n): a gateway
 * (`PayerApi`, default port 5050) and a node (`ReplicationApi` and gRPC health, default port 5055), see `d14n.ts`.
 * After a cutover (`POST /control {"d14nCutover": true}`) the V3 API refuses every write and subscription with
 * xmtp-node-go's retirement message, as XMTP's V3 backend does; its queries keep working.
 *
 * It stores and serves, in memory: identity updates (and which inbox each Ethereum address belongs to), key
 * packages, group messages (deduplicated by content, commits flagged), welcomes (v1 and pointers), commit-log
 * entries, and the two subscription streams. Paging follows the real node: 100 a page, cursors exclusive,
 * a cursor back only on a full page, both directions.
 *
 * What it does NOT check (the clients do, or nobody needs it here): signatures on identity updates and their
 * association rules (who may add or revoke what), key-package signatures and lifetimes, MLS message
 * validity beyond reading the group id and content type, welcome contents, the 10-installation limit,
 * smart-contract-wallet signatures (always answered invalid), authentication, rate limits, and payload limits.
 * Nothing survives a restart.
 */
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type Http2Server, type Http2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { xmtpCodecs, type XmtpCodecs } from "./codecs.js";
import { finishResponse, frame, GRPC_STATUS, readBody, readFrames, startResponse } from "../../lib/xmtp/grpc-wire.js";
import { MlsWireError, readGroupMessage } from "./mls-wire.js";
import { NodeRequestError, NodeState, type StoredGroupMessage, type StoredWelcome } from "./node-state.js";
import { d14nServices, GATEWAY_PREFIXES, keepOpen, NODE_PREFIXES } from "./d14n.js";
import { decodeMessage } from "../../lib/xmtp/protobuf-wire.js";
import { PUBLISH_CLIENT_ENVELOPES, classifyCall } from "../../lib/xmtp/networks.js";
import { PublishClientEnvelopesRequest, type ClientEnvelopeMessage } from "../../lib/xmtp/xmtpv4.js";

/** What a d14n publish carries, in V3 method names. */
const labelsOf = (request: Uint8Array): readonly string[] => {
  const call = classifyCall(PUBLISH_CLIENT_ENVELOPES, request);
  return call.kind === "write" ? call.labels : [];
};

/** The port `env: "local"` points every XMTP client at (fixed in the SDK). */
export const LOCAL_XMTP_PORT = 5556;
/** Default ports of the d14n gateway and node (those of xmtpd's test images). */
export const LOCAL_GATEWAY_PORT = 5050;
export const LOCAL_D14N_NODE_PORT = 5055;

/** What XMTP's V3 backend answers writes with after the d14n cutover (xmtp-node-go). */
export const V3_RETIRED_MESSAGE = "publishing to XMTP V3 is no longer available. Please upgrade your client to XMTP D14N.";
/** What it answers V3 subscriptions with after the cutover. */
export const V3_STREAMING_RETIRED_MESSAGE = "XMTP V3 streaming is no longer available. Please upgrade your client to XMTP D14N.";
const V3_WRITES = new Set(["SendGroupMessages", "SendWelcomeMessages", "UploadKeyPackage", "RegisterInstallation", "PublishIdentityUpdate", "BatchPublishCommitLog"]);
const V3_STREAMS = new Set(["SubscribeGroupMessages", "SubscribeWelcomeMessages"]);

/** One call the node served. */
export interface ServedCall {
  readonly method: string;
  readonly at: number;
  readonly ms: number;
  readonly status: number;
  /** The client's `x-app-version` header. */
  readonly appVersion: string;
}

/**
 * A failure the node injects into matching calls (tests of what a client does when the network fails it).
 * Scoped by the client's `x-app-version`, so tests sharing one node do not fail each other's calls.
 */
export interface NodeFault {
  /** The gRPC method, e.g. "SendGroupMessages". */
  readonly method: string;
  readonly appVersion?: string;
  /** Only SendGroupMessages batches that carry a commit. */
  readonly commitsOnly?: boolean;
  /** "before": refuse without storing anything; "after": store, then fail the answer (the commit is out, the client is told otherwise). */
  readonly when: "before" | "after";
  /** Calls it applies to (default 1). */
  readonly count?: number;
  /** gRPC status answered (default 14, UNAVAILABLE). */
  readonly code?: number;
  /** Wait this long before answering. */
  readonly delayMs?: number;
}

/** Options of {@link startLocalXmtpNode}. */
export interface LocalXmtpNodeOptions {
  readonly port?: number;
  readonly host?: string;
  /** Added before every call is answered (and before a stream starts), to stand for a real node's distance. */
  readonly latencyMs?: number;
  /** The node shuts itself down after this long (default: never). */
  readonly lifetimeMs?: number;
  /** Called for every call served (e.g. to print it). */
  readonly onCall?: (call: ServedCall) => void;
  /** Also serve the decentralized network: a gateway and a node (ports default to 5050 and 5055; 0 picks free ones). */
  readonly d14n?: { readonly gatewayPort?: number; readonly nodePort?: number };
  /** Retire V3 this long after start (the cutover), as `POST /control {"d14nCutover": true}` does. */
  readonly cutoverAfterMs?: number;
}

/** A running local node. */
export interface LocalXmtpNode {
  readonly url: string;
  /** The d14n gateway's URL (give it to clients as `gatewayHost`), or null when d14n is not served. */
  readonly gatewayUrl: string | null;
  /** The d14n node's URL (what GetNodes answers), or null. */
  readonly nodeUrl: string | null;
  /** True once V3 is retired: its writes and subscriptions are refused. */
  cutover: boolean;
  readonly state: NodeState;
  latencyMs: number;
  /** Calls served per gRPC method. */
  readonly counts: Map<string, number>;
  /** Calls served per client (`x-app-version`), per full gRPC path. */
  readonly countsByApp: Map<string, Map<string, number>>;
  /** The most recent calls (up to 10,000). */
  readonly recent: ServedCall[];
  /** Failures waiting for matching calls (see {@link NodeFault}); each is dropped once used up. */
  readonly faults: (NodeFault & { remaining: number })[];
  /** Resolves once the node has shut down (by `close`, or at the end of its lifetime). */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

type Unary = (request: Uint8Array) => Uint8Array;
const CALL_LOG_SIZE = 10_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the node; resolves once it listens. */
export async function startLocalXmtpNode(options: LocalXmtpNodeOptions = {}): Promise<LocalXmtpNode> {
  const codecs = xmtpCodecs();
  const state = new NodeState();
  const d14n = d14nServices(codecs, state, () => node.nodeUrl ?? "");
  const unary = { ...unaryHandlers(codecs, state), ...d14n.unary };
  const sessions = new Set<Http2Session>();
  const streams = new Set<() => void>();
  const counts = new Map<string, number>();
  const countsByApp = new Map<string, Map<string, number>>();
  const recent: ServedCall[] = [];
  const startedAt = Date.now();
  let markClosed = () => {};
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  let closing: Promise<void> | undefined;

  const record = (method: string, started: number, status: number, headers: IncomingHttpHeaders) => {
    const call: ServedCall = { method, at: started, ms: Date.now() - started, status, appVersion: String(headers["x-app-version"] ?? "") };
    counts.set(method, (counts.get(method) ?? 0) + 1);
    const path = String(headers[":path"] ?? method);
    const byApp = countsByApp.get(call.appVersion) ?? new Map<string, number>();
    byApp.set(path, (byApp.get(path) ?? 0) + 1);
    countsByApp.set(call.appVersion, byApp);
    recent.push(call);
    if (recent.length > CALL_LOG_SIZE) recent.splice(0, recent.length - CALL_LOG_SIZE);
    options.onCall?.(call);
  };

  const node: LocalXmtpNode = {
    url: "",
    gatewayUrl: null,
    nodeUrl: null,
    cutover: false,
    state,
    latencyMs: options.latencyMs ?? 0,
    counts,
    countsByApp,
    recent,
    faults: [],
    closed,
    close: () =>
      (closing ??= (async () => {
        clearTimeout(lifetime);
        clearTimeout(cutoverTimer);
        for (const stop of streams) stop();
        for (const session of sessions) session.destroy();
        await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
        markClosed();
      })()),
  };

  const serveGrpc = async (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string, prefixes: readonly string[]) => {
    const started = Date.now();
    const method = path.split("/").pop() ?? path;
    const body = await readBody(stream);
    if (node.latencyMs > 0) await sleep(node.latencyMs);
    try {
      const [request = new Uint8Array()] = readFrames(body);
      const served = prefixes.some((p) => path.startsWith(p));
      const handler = served ? unary[path] : undefined;
      if (node.cutover && served && path.startsWith("/xmtp.") && !path.startsWith("/xmtp.xmtpv4.")) {
        if (V3_WRITES.has(method)) throw new NodeRequestError(GRPC_STATUS.unavailable, V3_RETIRED_MESSAGE);
        if (V3_STREAMS.has(method)) throw new NodeRequestError(GRPC_STATUS.unavailable, V3_STREAMING_RETIRED_MESSAGE);
      }
      const fault = takeFault(node, codecs, method, String(headers["x-app-version"] ?? ""), request);
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (fault?.when === "before") throw new NodeRequestError(fault.code ?? GRPC_STATUS.unavailable, "fault injected by the local node (before)");
      if (handler) {
        const response = handler(request);
        if (fault) throw new NodeRequestError(fault.code ?? GRPC_STATUS.unavailable, "fault injected by the local node (after)");
        startResponse(stream);
        stream.write(frame(response));
        finishResponse(stream, GRPC_STATUS.ok);
        record(method, started, GRPC_STATUS.ok, headers);
        return;
      }
      if (served && path === d14n.subscribePath) {
        record(method, started, GRPC_STATUS.ok, headers);
        d14n.subscribe(stream, request, streams);
        return;
      }
      if (served && (path === "/xmtp.mls.api.v1.MlsApi/SubscribeGroupMessages" || path === "/xmtp.mls.api.v1.MlsApi/SubscribeWelcomeMessages")) {
        record(method, started, GRPC_STATUS.ok, headers);
        subscribe(codecs, state, stream, path.endsWith("GroupMessages") ? "group" : "welcome", request, streams);
        return;
      }
      finishResponse(stream, GRPC_STATUS.unimplemented, `${path} is not served by the local node`);
      record(method, started, GRPC_STATUS.unimplemented, headers);
    } catch (error) {
      const code =
        error instanceof NodeRequestError ? error.grpcCode : error instanceof MlsWireError || error instanceof RangeError ? GRPC_STATUS.invalidArgument : GRPC_STATUS.internal;
      finishResponse(stream, code, error instanceof Error ? error.message : String(error));
      record(method, started, code, headers);
    }
  };

  const serveControl = async (stream: ServerHttp2Stream, path: string, search: URLSearchParams) => {
    const reply = (status: number, body: unknown) => {
      stream.respond({ ":status": status, "content-type": "application/json" });
      stream.end(JSON.stringify(body));
    };
    if (path === "/health") {
      return reply(200, { ok: true, pid: process.pid, uptimeMs: Date.now() - startedAt, latencyMs: node.latencyMs, gatewayUrl: node.gatewayUrl, nodeUrl: node.nodeUrl, d14nCutover: node.cutover });
    }
    if (path === "/stats") {
      const group = search.get("group");
      const app = search.get("appVersion");
      return reply(200, {
        calls: Object.fromEntries(counts),
        ...(group ? { group: state.groupStats(group) } : {}),
        ...(app !== null ? { callsByPath: Object.fromEntries(countsByApp.get(app) ?? []) } : {}),
      });
    }
    if (path === "/control") {
      const body = JSON.parse((await readBody(stream)).toString("utf8") || "{}") as {
        latencyMs?: unknown;
        faults?: NodeFault[];
        clearFaults?: string;
        d14nCutover?: unknown;
        saveStateTo?: unknown;
        loadStateFrom?: unknown;
      };
      if (typeof body.latencyMs === "number" && body.latencyMs >= 0) node.latencyMs = body.latencyMs;
      // Benchmark fixtures: the whole store written to, or replaced from, a file on this machine.
      if (typeof body.saveStateTo === "string") await writeFile(body.saveStateTo, state.dump());
      if (typeof body.loadStateFrom === "string") state.load(await readFile(body.loadStateFrom));
      if (body.d14nCutover === true) node.cutover = true;
      if (typeof body.clearFaults === "string") {
        const keep = node.faults.filter((f) => f.appVersion !== body.clearFaults);
        node.faults.splice(0, node.faults.length, ...keep);
      }
      for (const fault of body.faults ?? []) node.faults.push({ ...fault, remaining: fault.count ?? 1 });
      return reply(200, { latencyMs: node.latencyMs, faults: node.faults.length, d14nCutover: node.cutover });
    }
    reply(404, { error: "not found" });
  };

  const servers: Http2Server[] = [];
  const host = options.host ?? "127.0.0.1";
  /** A server on `port` answering the gRPC services under `prefixes`, and the control paths. */
  const listen = async (port: number, prefixes: readonly string[]): Promise<string> => {
    const server: Http2Server = createServer();
    servers.push(server);
    server.on("session", (session) => {
      sessions.add(session);
      session.on("close", () => sessions.delete(session));
    });
    server.on("stream", (stream, headers) => {
      stream.on("error", () => undefined);
      const url = new URL(String(headers[":path"] ?? "/"), "http://node");
      const isGrpc = String(headers["content-type"] ?? "").startsWith("application/grpc");
      const work = isGrpc ? serveGrpc(stream, headers, url.pathname, prefixes) : serveControl(stream, url.pathname, url.searchParams);
      work.catch(() => {
        if (!stream.destroyed) stream.close();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    return `http://${host}:${typeof address === "object" && address ? address.port : port}`;
  };

  try {
    const url = await listen(options.port ?? LOCAL_XMTP_PORT, ["/xmtp.mls.api.v1.", "/xmtp.identity.api.v1."]);
    Object.assign(node, { url });
    if (options.d14n) {
      const nodeUrl = await listen(options.d14n.nodePort ?? LOCAL_D14N_NODE_PORT, NODE_PREFIXES);
      const gatewayUrl = await listen(options.d14n.gatewayPort ?? LOCAL_GATEWAY_PORT, GATEWAY_PREFIXES);
      Object.assign(node, { nodeUrl, gatewayUrl });
    }
  } catch (error) {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    throw error;
  }
  const lifetime = options.lifetimeMs ? setTimeout(() => void node.close(), options.lifetimeMs) : undefined;
  const cutoverTimer = options.cutoverAfterMs !== undefined ? setTimeout(() => (node.cutover = true), options.cutoverAfterMs) : undefined;
  return node;
}

/**
 * The fault armed for this call, if any. A fault names a V3 method; on d14n it matches the one write method when the
 * envelopes carry that kind of write (a "SendGroupMessages" fault fails a PublishClientEnvelopes of group messages).
 */
function takeFault(node: LocalXmtpNode, c: XmtpCodecs, method: string, appVersion: string, request: Uint8Array): NodeFault | undefined {
  const d14nPublish = method === "PublishClientEnvelopes";
  const envelopes = () => decodeMessage<{ envelopes: ClientEnvelopeMessage[] }>(PublishClientEnvelopesRequest, request).envelopes;
  const groupData = (): Uint8Array[] =>
    d14nPublish
      ? envelopes().flatMap((e) => (e.groupMessage ? [c.GroupMessageInput.decode(e.groupMessage).v1?.data].filter((d): d is Uint8Array => d !== undefined) : []))
      : c.SendGroupMessagesRequest.decode(request).messages.flatMap((m) => (m.v1 ? [m.v1.data] : []));
  const index = node.faults.findIndex((f) => {
    if (f.appVersion !== undefined && f.appVersion !== appVersion) return false;
    const matches = f.method === method || (d14nPublish && labelsOf(request).includes(f.method));
    if (!matches) return false;
    if (!f.commitsOnly) return true;
    return groupData().some((data) => readGroupMessage(data).isCommit);
  });
  const fault = node.faults[index];
  if (!fault) return undefined;
  if (--fault.remaining <= 0) node.faults.splice(index, 1);
  return fault;
}

const groupMessageOut = (m: StoredGroupMessage) => ({
  v1: { id: m.id, createdNs: m.createdNs, groupId: m.groupId, data: m.data, senderHmac: m.senderHmac, shouldPush: m.shouldPush, isCommit: m.isCommit },
});

const welcomeOut = (w: StoredWelcome) =>
  w.input.v1
    ? { v1: { ...w.input.v1, id: w.id, createdNs: w.createdNs } }
    : { welcomePointer: { ...w.input.welcomePointer, id: w.id, createdNs: w.createdNs } };

function unaryHandlers(c: XmtpCodecs, state: NodeState): Record<string, Unary> {
  const mls = "/xmtp.mls.api.v1.MlsApi/";
  const identity = "/xmtp.identity.api.v1.IdentityApi/";
  const empty = () => new Uint8Array();
  return {
    [`${mls}SendGroupMessages`]: (bytes) => {
      const request = c.SendGroupMessagesRequest.decode(bytes);
      const inputs = request.messages.map((m) => {
        if (!m.v1) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "invalid group message");
        return m.v1;
      });
      if (inputs.length === 0) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "no group messages to send");
      state.sendGroupMessages(inputs);
      return empty();
    },
    [`${mls}SendWelcomeMessages`]: (bytes) => {
      state.sendWelcomes(c.SendWelcomeMessagesRequest.decode(bytes).messages);
      return empty();
    },
    [`${mls}UploadKeyPackage`]: (bytes) => {
      const keyPackage = c.UploadKeyPackageRequest.decode(bytes).keyPackage;
      if (!keyPackage) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "no key package");
      state.uploadKeyPackage(keyPackage.keyPackageTlsSerialized);
      return empty();
    },
    [`${mls}RegisterInstallation`]: (bytes) => {
      const keyPackage = c.RegisterInstallationRequest.decode(bytes).keyPackage;
      if (!keyPackage) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "no key package");
      const { installationKey } = state.uploadKeyPackage(keyPackage.keyPackageTlsSerialized);
      return c.RegisterInstallationResponse.encode(c.RegisterInstallationResponse.fromPartial({ installationKey })).finish();
    },
    [`${mls}FetchKeyPackages`]: (bytes) => {
      const found = state.fetchKeyPackages(c.FetchKeyPackagesRequest.decode(bytes).installationKeys);
      const keyPackages = found.map((kp) => ({ keyPackageTlsSerialized: kp ?? new Uint8Array() }));
      return c.FetchKeyPackagesResponse.encode(c.FetchKeyPackagesResponse.fromPartial({ keyPackages })).finish();
    },
    [`${mls}QueryGroupMessages`]: (bytes) => {
      const request = c.QueryGroupMessagesRequest.decode(bytes);
      if (request.groupId.length === 0) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "group is required");
      const { messages, pagingInfo } = state.queryGroupMessages(request.groupId, request.pagingInfo);
      return c.QueryGroupMessagesResponse.encode(c.QueryGroupMessagesResponse.fromPartial({ messages: messages.map(groupMessageOut), pagingInfo })).finish();
    },
    [`${mls}QueryWelcomeMessages`]: (bytes) => {
      const request = c.QueryWelcomeMessagesRequest.decode(bytes);
      if (request.installationKey.length === 0) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "installation is required");
      const { messages, pagingInfo } = state.queryWelcomes(request.installationKey, request.pagingInfo);
      return c.QueryWelcomeMessagesResponse.encode(c.QueryWelcomeMessagesResponse.fromPartial({ messages: messages.map(welcomeOut), pagingInfo })).finish();
    },
    [`${mls}GetNewestGroupMessage`]: (bytes) => {
      const request = c.GetNewestGroupMessageRequest.decode(bytes);
      const responses = request.groupIds.map((groupId) => {
        const newest = state.newestGroupMessage(groupId);
        if (!newest) return {};
        const out = groupMessageOut(newest);
        return { groupMessage: request.includeContent ? out : { v1: { id: out.v1.id, createdNs: out.v1.createdNs, groupId: out.v1.groupId, isCommit: out.v1.isCommit } } };
      });
      return c.GetNewestGroupMessageResponse.encode(c.GetNewestGroupMessageResponse.fromPartial({ responses })).finish();
    },
    [`${mls}BatchPublishCommitLog`]: (bytes) => {
      for (const entry of c.BatchPublishCommitLogRequest.decode(bytes).requests) {
        if (entry.groupId.length === 0 || entry.serializedCommitLogEntry.length === 0) {
          throw new NodeRequestError(GRPC_STATUS.invalidArgument, "invalid commit log entry");
        }
        state.publishCommitLog(entry.groupId, entry.serializedCommitLogEntry, entry.signature);
      }
      return empty();
    },
    [`${mls}BatchQueryCommitLog`]: (bytes) => {
      const responses = c.BatchQueryCommitLogRequest.decode(bytes).requests.map((request) => {
        const { entries, pagingInfo } = state.queryCommitLog(request.groupId, request.pagingInfo);
        return {
          groupId: request.groupId,
          commitLogEntries: entries.map((e) => ({ sequenceId: e.sequenceId, serializedCommitLogEntry: e.serializedCommitLogEntry, signature: e.signature })),
          pagingInfo,
        };
      });
      return c.BatchQueryCommitLogResponse.encode(c.BatchQueryCommitLogResponse.fromPartial({ responses })).finish();
    },
    [`${identity}PublishIdentityUpdate`]: (bytes) => {
      const update = c.PublishIdentityUpdateRequest.decode(bytes).identityUpdate;
      if (!update?.inboxId) throw new NodeRequestError(GRPC_STATUS.invalidArgument, "IdentityUpdate is required");
      state.publishIdentityUpdate(update);
      return empty();
    },
    [`${identity}GetIdentityUpdates`]: (bytes) => {
      const responses = c.GetIdentityUpdatesRequest.decode(bytes).requests.map((r) => ({
        inboxId: r.inboxId,
        updates: state.identityUpdates(r.inboxId, r.sequenceId.toNumber()),
      }));
      return c.GetIdentityUpdatesResponse.encode(c.GetIdentityUpdatesResponse.fromPartial({ responses })).finish();
    },
    [`${identity}GetInboxIds`]: (bytes) => {
      const responses = c.GetInboxIdsRequest.decode(bytes).requests.map((r) => {
        const inboxId = state.inboxIdOf(r.identifier);
        return { identifier: r.identifier, identifierKind: r.identifierKind, ...(inboxId ? { inboxId } : {}) };
      });
      return c.GetInboxIdsResponse.encode(c.GetInboxIdsResponse.fromPartial({ responses })).finish();
    },
    [`${identity}VerifySmartContractWalletSignatures`]: (bytes) => {
      const { signatures } = c.VerifySmartContractWalletSignaturesRequest.decode(bytes);
      const responses = signatures.map(() => ({ isValid: false, error: "the local node does not verify smart-contract wallet signatures" }));
      return c.VerifySmartContractWalletSignaturesResponse.encode(c.VerifySmartContractWalletSignaturesResponse.fromPartial({ responses })).finish();
    },
  };
}

/** A subscription stream: history after each filter's cursor (ascending), then everything new, until the client leaves. */
function subscribe(c: XmtpCodecs, state: NodeState, stream: ServerHttp2Stream, kind: "group" | "welcome", request: Uint8Array, streams: Set<() => void>): void {
  const highWater = new Map<string, number>();
  const send = (key: Uint8Array, id: number, bytes: Uint8Array) => {
    const k = Buffer.from(key).toString("hex");
    if ((highWater.get(k) ?? 0) >= id || stream.destroyed) return;
    highWater.set(k, id);
    stream.write(frame(bytes));
  };
  // Headers go out at once: tonic clients wait for them before treating the stream as open.
  startResponse(stream);
  let stop: () => void;
  if (kind === "group") {
    const filters = c.SubscribeGroupMessagesRequest.decode(request).filters;
    const wanted = new Set(filters.map((f) => Buffer.from(f.groupId).toString("hex")));
    const out = (m: StoredGroupMessage) => send(m.groupId, m.id, c.GroupMessage.encode(c.GroupMessage.fromPartial(groupMessageOut(m))).finish());
    const unsubscribe = state.onGroupMessage((m) => {
      if (wanted.has(Buffer.from(m.groupId).toString("hex"))) out(m);
    });
    for (const f of filters) {
      for (const m of state.groupMessagesAfter(f.groupId, f.idCursor.toNumber())) out(m);
    }
    stop = unsubscribe;
  } else {
    const filters = c.SubscribeWelcomeMessagesRequest.decode(request).filters;
    const wanted = new Set(filters.map((f) => Buffer.from(f.installationKey).toString("hex")));
    const out = (w: StoredWelcome) => send(w.installationKey, w.id, c.WelcomeMessage.encode(c.WelcomeMessage.fromPartial(welcomeOut(w))).finish());
    const unsubscribe = state.onWelcome((w) => {
      if (wanted.has(Buffer.from(w.installationKey).toString("hex"))) out(w);
    });
    for (const f of filters) for (const w of state.welcomesAfter(f.installationKey, f.idCursor.toNumber())) out(w);
    stop = unsubscribe;
  }
  keepOpen(stream, stop, streams);
}
