import { connect, type IncomingHttpHeaders } from "node:http2";
import { frame, readFrames } from "../../lib/xmtp/grpc-wire.js";

/** What one gRPC call answered. */
export interface GrpcReply {
  /** The HTTP status. */
  readonly status: number;
  readonly grpcStatus: string;
  readonly grpcMessage: string;
  /** The reply messages, unframed. */
  readonly frames: Buffer[];
}

/**
 * One gRPC call over cleartext HTTP/2 (to the relay, or the local node): sends `body` as one message. A stream the
 * server keeps open (a subscription) is closed by the client after a second.
 */
export function grpcCall(url: string, path: string, body: Uint8Array): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const session = connect(url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    stream.on("response", (h) => (headers = h));
    stream.on("trailers", (t: IncomingHttpHeaders) => (trailers = t));
    stream.on("data", (d: Buffer) => parts.push(d));
    stream.on("end", () => {
      session.close();
      resolve({
        status: Number(headers[":status"]),
        grpcStatus: String(trailers["grpc-status"] ?? headers["grpc-status"]),
        grpcMessage: decodeURIComponent(String(trailers["grpc-message"] ?? headers["grpc-message"] ?? "")),
        frames: readFrames(Buffer.concat(parts)),
      });
    });
    setTimeout(() => stream.close(), 1000).unref();
    stream.end(frame(body));
  });
}
