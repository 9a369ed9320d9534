import type { ServerHttp2Stream } from "node:http2";

/**
 * The little of gRPC over HTTP/2 that the write-ahead relay and the local XMTP node speak themselves: message
 * framing (a 1-byte compressed flag, a 4-byte big-endian length, the message) and status trailers.
 */

/** gRPC status codes used here. */
export const GRPC_STATUS = { ok: 0, invalidArgument: 3, failedPrecondition: 9, unimplemented: 12, internal: 13, unavailable: 14 } as const;

/** Splits a gRPC body into its messages (compression is not supported: flag 0 only). @throws {Error} on a malformed body. */
export function readFrames(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset + 5 <= body.length) {
    if (body[offset] !== 0) throw new Error("compressed gRPC messages are not supported");
    const length = body.readUInt32BE(offset + 1);
    if (offset + 5 + length > body.length) throw new Error("truncated gRPC message");
    out.push(body.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  if (offset !== body.length) throw new Error("truncated gRPC frame header");
  return out;
}

/** A stream's whole request body. */
export function readBody(stream: ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => parts.push(chunk));
    stream.once("end", () => resolve(Buffer.concat(parts)));
    stream.once("error", reject);
  });
}

/** One length-prefixed gRPC message. */
export function frame(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Answers a stream with gRPC headers (once) and keeps it open for messages. */
export function startResponse(stream: ServerHttp2Stream): void {
  if (!stream.headersSent) stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
}

/** Ends a gRPC response with its status in the trailers (or trailers-only when nothing was sent yet). */
export function finishResponse(stream: ServerHttp2Stream, code: number, message = ""): void {
  if (stream.destroyed || stream.closed) return;
  const trailers = { "grpc-status": String(code), ...(message ? { "grpc-message": encodeURIComponent(message) } : {}) };
  if (!stream.headersSent) {
    stream.respond({ ":status": 200, "content-type": "application/grpc", ...trailers }, { endStream: true });
    return;
  }
  stream.once("wantTrailers", () => stream.sendTrailers(trailers));
  stream.end();
}
