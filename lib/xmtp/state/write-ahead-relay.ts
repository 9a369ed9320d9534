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
import { finishResponse, GRPC_STATUS, readBody } from "../grpc-wire.js";

/**
 * The XMTP API calls whose effect the installation's saved state must already know of when the network sees
 * them: commits and messages (a restored copy that does not know its own commit is forked from the group, and
 * one that does not know its own message reuses its ratchet key), key packages and identity updates (their
 * private keys live only in the database), and commit-log entries (republished, they would be duplicated).
 * Welcomes are not among them: they follow a commit the state already knows, and are sent again from it.
 */
export const WRITES_SAVED_FIRST: ReadonlySet<string> = new Set([
  "/xmtp.mls.api.v1.MlsApi/SendGroupMessages",
  "/xmtp.mls.api.v1.MlsApi/UploadKeyPackage",
  "/xmtp.mls.api.v1.MlsApi/RegisterInstallation",
  "/xmtp.mls.api.v1.MlsApi/BatchPublishCommitLog",
  "/xmtp.identity.api.v1.IdentityApi/PublishIdentityUpdate",
]);

/** Points of a relayed write, in order (tests crash processes at each). */
export type RelayStep = "write-held" | "write-saved" | "write-forwarded" | "write-answered" | "welcome-answered";

/** Options of {@link startWriteAheadRelay}. */
export interface WriteAheadRelayOptions {
  /** The XMTP API the client would otherwise talk to (`https://grpc.production.xmtp.network:443`, …). */
  readonly upstream: string;
  /**
   * Saves the installation's state before a write leaves (see {@link WRITES_SAVED_FIRST}). When it throws,
   * the write is refused with UNAVAILABLE and never reaches the network.
   */
  readonly beforeWrite: (path: string) => Promise<void>;
  readonly onStep?: (step: RelayStep, path: string) => void | Promise<void>;
}

/** A running relay: give `url` to the client as its API URL. */
export interface WriteAheadRelay {
  readonly url: string;
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

/**
 * A gRPC relay on 127.0.0.1 between this instance's XMTP client and the XMTP API, so that no write the
 * saved state must know of (see {@link WRITES_SAVED_FIRST}) reaches the network before the state that knows
 * it is saved: such a call is held, `beforeWrite` saves the database (the client has already recorded the
 * commit as published), and only then is it forwarded. Everything else, streams included, passes through.
 * The client speaks cleartext HTTP/2 to the relay; the relay speaks TLS to a `https` upstream.
 */
export async function startWriteAheadRelay(options: WriteAheadRelayOptions): Promise<WriteAheadRelay> {
  const upstreamUrl = new URL(options.upstream);
  let upstream: ClientHttp2Session | undefined;
  const session = (): ClientHttp2Session => {
    if (!upstream || upstream.closed || upstream.destroyed) {
      const fresh = connect(upstreamUrl.origin);
      // Failures reach the streams opened on the session; a broken session is replaced on the next call.
      fresh.on("error", () => undefined);
      fresh.unref();
      fresh.on("close", () => {
        if (upstream === fresh) upstream = undefined;
      });
      upstream = fresh;
    }
    return upstream;
  };
  const step = async (name: RelayStep, path: string) => options.onStep?.(name, path);

  const forward = (down: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string, body?: Buffer): ClientHttp2Stream => {
    const up = session().request({
      ":method": headers[":method"] ?? "POST",
      ":path": path,
      ":scheme": upstreamUrl.protocol.replace(":", ""),
      ":authority": upstreamUrl.host,
      ...endToEnd(headers),
    });
    let trailers: OutgoingHttpHeaders = {};
    up.on("response", (response) => {
      if (down.destroyed) return;
      const { ":status": status = 200, ...rest } = response;
      // A trailers-only answer (errors) carries its status in these headers and ends here.
      if (up.endAfterHeaders) down.respond({ ":status": status, ...endToEnd(rest) }, { endStream: true });
      else down.respond({ ":status": status, ...endToEnd(rest) }, { waitForTrailers: true });
    });
    up.on("data", (chunk: Buffer) => {
      if (!down.destroyed) down.write(chunk);
    });
    up.on("trailers", (received: IncomingHttpHeaders) => (trailers = endToEnd(received)));
    up.on("end", () => {
      if (down.destroyed || down.closed) return;
      if (!down.headersSent) return finishResponse(down, GRPC_STATUS.unavailable, "XMTP API answered nothing");
      if (up.endAfterHeaders) return;
      down.once("wantTrailers", () => down.sendTrailers(trailers));
      down.end();
    });
    up.on("error", (error: Error) => {
      if (!down.headersSent) finishResponse(down, GRPC_STATUS.unavailable, `XMTP API unreachable: ${error.message}`);
      else down.close();
    });
    // The client gave up (a finished subscription, say): so does the relay.
    down.on("close", () => {
      if (!up.closed) up.close();
    });
    if (body) up.end(body);
    else down.pipe(up);
    return up;
  };

  const relayWrite = async (down: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string) => {
    const body = await readBody(down);
    await step("write-held", path);
    try {
      await options.beforeWrite(path);
    } catch (error) {
      finishResponse(down, GRPC_STATUS.unavailable, `not sent: the installation's state could not be saved first (${error instanceof Error ? error.name : "error"})`);
      return;
    }
    await step("write-saved", path);
    const up = forward(down, headers, path, body);
    await step("write-forwarded", path);
    up.once("end", () => void step("write-answered", path));
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
    if (WRITES_SAVED_FIRST.has(path)) {
      relayWrite(down, headers, path).catch(() => {
        if (!down.destroyed) finishResponse(down, GRPC_STATUS.unavailable, "relay failed");
      });
      return;
    }
    const up = forward(down, headers, path);
    if (path.endsWith("/SendWelcomeMessages")) up.once("end", () => void step("welcome-answered", path));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // A function instance must be free to freeze or exit between requests.
  server.unref();
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("write-ahead relay did not bind");
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: async () => {
      upstream?.destroy();
      for (const client of clients) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
