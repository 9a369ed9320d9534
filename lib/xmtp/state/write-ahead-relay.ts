import {
  connect,
  createServer,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { finishResponse, frame, GRPC_STATUS, readBody, readFrames } from "../grpc-wire.js";
import { classifyCall, GET_NODES, V3_RETIRED } from "../networks.js";
import { decodeMessage, encodeMessage } from "../protobuf-wire.js";
import { GetNodesResponse, type GetNodesResponseMessage } from "../xmtpv4.js";

/** Points of a relayed write, in order (tests crash processes at each). */
export type RelayStep = "write-held" | "write-saved" | "write-forwarded" | "write-answered" | "welcome-answered";

/** Options of {@link startWriteAheadRelay}. */
export interface WriteAheadRelayOptions {
  /** XMTP's V3 API (`https://grpc.production.xmtp.network:443`, …). */
  readonly upstream: string;
  /** The app's gateway service on the decentralized network, if any: the relay then serves it too (`gatewayUrl`). */
  readonly gateway?: string;
  /**
   * Saves the installation's state before a write leaves (see `classifyCall` in `../networks.ts`). When it throws,
   * the write is refused with UNAVAILABLE and never reaches the network.
   */
  readonly beforeWrite: (detail: string) => Promise<void>;
  /** Each step of a write; `detail` is the path followed by what the write carries (V3 method names). */
  readonly onStep?: (step: RelayStep, detail: string) => void | Promise<void>;
  /** XMTP's V3 backend answered a write with its retirement message (the d14n cutover has happened). */
  readonly onV3Retired?: () => void;
  /** A unary call's answer must come within this long (default 20 s: under the function's limit, over any real call). */
  readonly callTimeoutMs?: number;
  /** How often an idle upstream connection is pinged (default 10 s); one that misses an answer is dropped. */
  readonly pingIntervalMs?: number;
}

/** A running relay: give `url` to the client as its API URL, and `gatewayUrl` as its gateway host. */
export interface WriteAheadRelay {
  readonly url: string;
  /** Null unless the relay was started with a gateway. */
  readonly gatewayUrl: string | null;
  close(): Promise<void>;
}

// Headers that belong to one HTTP/2 hop: the relay sets its own.
const HOP_HEADERS = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "host"]);
const endToEnd = (headers: IncomingHttpHeaders): OutgoingHttpHeaders => {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(":") && !HOP_HEADERS.has(name) && value !== undefined) out[name] = value;
  }
  return out;
};
const retiredAnswer = (headers: IncomingHttpHeaders): boolean => {
  if (String(headers["grpc-status"] ?? "") !== String(GRPC_STATUS.unavailable)) return false;
  const message = String(headers["grpc-message"] ?? "");
  let decoded = message;
  try {
    decoded = decodeURIComponent(message);
  } catch {
    // Not percent-encoded: read as it is.
  }
  return V3_RETIRED.test(decoded);
};

/** One listener on 127.0.0.1 in front of one upstream (the V3 API, the gateway, or one d14n node). */
interface Endpoint {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A gRPC relay on 127.0.0.1 between this instance's XMTP client and XMTP, in either protocol, so that no write the
 * saved state must know of reaches the network before the state that knows it is saved: such a call is held,
 * `beforeWrite` saves the database (the client has already recorded the commit as published), and only then is it
 * forwarded. Reads (an explicit list) pass through; anything else is a write (fail closed).
 *
 * On the decentralized network the client writes to the gateway and reads from a node the gateway names
 * (`GetNodes`): the relay rewrites each node's URL to a forwarder of its own, so that every call still passes here.
 * The client speaks cleartext HTTP/2 to the relay (one `is_secure` flag covers all its hosts); the relay speaks TLS
 * to each `https` upstream.
 */
export async function startWriteAheadRelay(options: WriteAheadRelayOptions): Promise<WriteAheadRelay> {
  const endpoints: Endpoint[] = [];
  const nodeForwarders = new Map<string, Promise<Endpoint>>();
  const forwarderFor = (nodeUrl: string): Promise<Endpoint> => {
    let forwarder = nodeForwarders.get(nodeUrl);
    if (!forwarder) {
      forwarder = startEndpoint(nodeUrl, options).then((endpoint) => (endpoints.push(endpoint), endpoint));
      forwarder.catch(() => nodeForwarders.delete(nodeUrl));
      nodeForwarders.set(nodeUrl, forwarder);
    }
    return forwarder;
  };
  // GetNodes: the same nodes, each behind a forwarder of this relay.
  const rewriteNodes = async (message: Buffer): Promise<Uint8Array> => {
    const { nodes } = decodeMessage<GetNodesResponseMessage>(GetNodesResponse, message);
    const rewritten = new Map<number, string>();
    for (const [id, url] of nodes) rewritten.set(id, (await forwarderFor(url)).url);
    return encodeMessage(GetNodesResponse, { nodes: rewritten });
  };
  try {
    const v3 = await startEndpoint(options.upstream, options);
    endpoints.push(v3);
    const gateway = options.gateway ? await startEndpoint(options.gateway, options, { [GET_NODES]: rewriteNodes }) : null;
    if (gateway) endpoints.push(gateway);
    return {
      url: v3.url,
      gatewayUrl: gateway?.url ?? null,
      close: async () => {
        await Promise.all(endpoints.map((e) => e.close()));
      },
    };
  } catch (error) {
    await Promise.all(endpoints.map((e) => e.close()));
    throw error;
  }
}

type Rewrite = (message: Buffer) => Promise<Uint8Array>;

async function startEndpoint(upstreamUrlText: string, options: WriteAheadRelayOptions, rewrites: Record<string, Rewrite> = {}): Promise<Endpoint> {
  const upstreamUrl = new URL(upstreamUrlText);
  const callTimeoutMs = options.callTimeoutMs ?? 20_000;
  const pingIntervalMs = options.pingIntervalMs ?? 10_000;
  let upstream: ClientHttp2Session | undefined;
  const session = (): ClientHttp2Session => {
    if (!upstream || upstream.closed || upstream.destroyed) {
      const fresh = connect(upstreamUrl.origin);
      // Failures reach the streams opened on the session; a broken session is replaced on the next call.
      fresh.on("error", () => undefined);
      fresh.unref();
      // A half-open connection (after the instance was frozen, say) is noticed by a missed ping, not only by
      // libxmtp's 120 s request timeout: drop it, and the next call opens a new one.
      const pinger = setInterval(() => {
        if (fresh.destroyed || fresh.closed) return clearInterval(pinger);
        const answered = setTimeout(() => fresh.destroy(new Error("XMTP API missed a ping")), Math.min(5000, pingIntervalMs));
        answered.unref();
        try {
          fresh.ping((error) => {
            clearTimeout(answered);
            if (error) fresh.destroy(error);
          });
        } catch {
          clearTimeout(answered);
        }
      }, pingIntervalMs);
      pinger.unref();
      fresh.on("close", () => {
        clearInterval(pinger);
        if (upstream === fresh) upstream = undefined;
      });
      upstream = fresh;
    }
    return upstream;
  };
  const step = async (name: RelayStep, detail: string) => options.onStep?.(name, detail);

  // Once closed, nothing more leaves: a write held while the relay closed is never forwarded.
  let closed = false;
  const forward = (down: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string, body?: Buffer, rewrite?: Rewrite): ClientHttp2Stream | undefined => {
    if (closed) {
      finishResponse(down, GRPC_STATUS.unavailable, "relay closed");
      return undefined;
    }
    const up = session().request({
      ":method": headers[":method"] ?? "POST",
      ":path": path,
      ":scheme": upstreamUrl.protocol.replace(":", ""),
      ":authority": upstreamUrl.host,
      ...endToEnd(headers),
    });
    const streaming = /\/Subscribe[A-Za-z]*$/.test(path);
    const deadline = streaming
      ? undefined
      : setTimeout(() => {
          up.close();
          finishResponse(down, GRPC_STATUS.unavailable, `XMTP API did not answer within ${callTimeoutMs} ms`);
        }, callTimeoutMs);
    deadline?.unref();
    let trailers: OutgoingHttpHeaders = {};
    let responseHeaders: OutgoingHttpHeaders = {};
    const held: Buffer[] = [];
    up.on("response", (response) => {
      if (retiredAnswer(response)) options.onV3Retired?.();
      if (down.destroyed) return;
      const { ":status": status = 200, ...rest } = response;
      responseHeaders = { ":status": status, ...endToEnd(rest) };
      // A trailers-only answer (errors) carries its status in these headers and ends here.
      if (up.endAfterHeaders) down.respond(responseHeaders, { endStream: true });
      else if (!rewrite) down.respond(responseHeaders, { waitForTrailers: true });
    });
    up.on("data", (chunk: Buffer) => {
      if (rewrite) held.push(chunk);
      else if (!down.destroyed) down.write(chunk);
    });
    up.on("trailers", (received: IncomingHttpHeaders) => {
      if (retiredAnswer(received)) options.onV3Retired?.();
      trailers = endToEnd(received);
    });
    up.on("end", () => {
      clearTimeout(deadline);
      if (down.destroyed || down.closed) return;
      if (up.endAfterHeaders) return;
      if (rewrite) {
        void (async () => {
          try {
            const messages = readFrames(Buffer.concat(held));
            const out = await Promise.all(messages.map((m) => rewrite(m)));
            if (down.destroyed || down.closed) return;
            down.respond(responseHeaders, { waitForTrailers: true });
            for (const m of out) down.write(frame(m));
            down.once("wantTrailers", () => down.sendTrailers(trailers));
            down.end();
          } catch (error) {
            finishResponse(down, GRPC_STATUS.unavailable, `XMTP API answer could not be relayed: ${error instanceof Error ? error.message : String(error)}`);
          }
        })();
        return;
      }
      if (!down.headersSent) return finishResponse(down, GRPC_STATUS.unavailable, "XMTP API answered nothing");
      down.once("wantTrailers", () => down.sendTrailers(trailers));
      down.end();
    });
    up.on("error", (error: Error) => {
      clearTimeout(deadline);
      if (!down.headersSent) finishResponse(down, GRPC_STATUS.unavailable, `XMTP API unreachable: ${error.message}`);
      else down.close();
    });
    // The client gave up (a finished subscription, say): so does the relay.
    down.on("close", () => {
      clearTimeout(deadline);
      if (!up.closed) up.close();
    });
    if (body) up.end(body);
    else down.pipe(up);
    return up;
  };

  const relayWrite = async (down: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string) => {
    const body = await readBody(down);
    let message: Buffer | undefined;
    try {
      message = readFrames(body)[0];
    } catch {
      message = undefined;
    }
    const call = classifyCall(path, message);
    const detail = call.kind === "write" ? `${path} ${call.labels.join(" ")}` : path;
    if (call.kind === "write" && !call.savedFirst) {
      const up = forward(down, headers, path, body);
      if (call.labels.includes("SendWelcomeMessages")) up?.once("end", () => void step("welcome-answered", detail));
      return;
    }
    await step("write-held", detail);
    try {
      await options.beforeWrite(detail);
    } catch (error) {
      finishResponse(down, GRPC_STATUS.unavailable, `not sent: the installation's state could not be saved first (${error instanceof Error ? error.name : "error"})`);
      return;
    }
    await step("write-saved", detail);
    const up = forward(down, headers, path, body);
    if (!up) return;
    await step("write-forwarded", detail);
    up.once("end", () => void step("write-answered", detail));
  };

  const server: Http2Server = createServer();
  const clients = new Set<Http2Session>();
  server.on("session", (client) => {
    clients.add(client);
    client.on("close", () => clients.delete(client));
  });
  server.on("stream", (down, headers) => {
    down.on("error", () => undefined);
    const path = String(headers[":path"] ?? "");
    if (classifyCall(path).kind === "read") {
      const rewrite = rewrites[path];
      if (!rewrite) {
        forward(down, headers, path);
        return;
      }
      void readBody(down).then(
        (body) => forward(down, headers, path, body, rewrite),
        () => finishResponse(down, GRPC_STATUS.unavailable, "relay failed"),
      );
      return;
    }
    relayWrite(down, headers, path).catch(() => {
      if (!down.destroyed) finishResponse(down, GRPC_STATUS.unavailable, "relay failed");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // A function instance must be free to freeze or exit between requests.
  server.unref();
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("write-ahead relay did not bind");
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: async () => {
      closed = true;
      upstream?.destroy();
      for (const client of clients) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
