import { connect, type IncomingHttpHeaders } from "node:http2";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xmtpCodecs } from "../../../local/xmtp-node/codecs.js";
import { LOCAL_XMTP_URL } from "../../../local/xmtp-node/launcher.js";
import { frame, readFrames } from "../../../lib/xmtp/grpc-wire.js";
import { startWriteAheadRelay, type RelayStep, type WriteAheadRelay } from "../../../lib/xmtp/state/write-ahead-relay.js";
import { nodeGroupStats } from "../../support/xmtp-people.js";

// The relay between the client and the XMTP API, against the local node: reads pass, writes wait for the save.
const c = xmtpCodecs();
let relay: WriteAheadRelay;
let saves = 0;
let refuse = false;
// While set, a save waits for it: the write is held meanwhile.
let gate: Promise<void> | undefined;
const steps: [RelayStep, string][] = [];

beforeAll(async () => {
  relay = await startWriteAheadRelay({
    upstream: LOCAL_XMTP_URL,
    beforeWrite: async () => {
      saves++;
      await gate;
      if (refuse) throw new Error("Redis cut");
    },
    onStep: (step, path) => void steps.push([step, path]),
  });
});
afterAll(() => relay.close());

/** One unary gRPC call through the relay: status, grpc-status and the decoded reply frames. */
function call(path: string, body: Uint8Array): Promise<{ status: number; grpcStatus: string; frames: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const session = connect(relay.url);
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
      resolve({ status: Number(headers[":status"]), grpcStatus: String(trailers["grpc-status"] ?? headers["grpc-status"]), frames: readFrames(Buffer.concat(parts)) });
    });
    stream.end(frame(body));
  });
}

// A private MLS message carrying a commit (content type 3) to a group of our own.
const commitTo = (groupId: Buffer) =>
  c.SendGroupMessagesRequest.encode(
    c.SendGroupMessagesRequest.fromPartial({
      messages: [{ v1: { data: Buffer.concat([Buffer.from([0, 1, 0, 2, groupId.length]), groupId, Buffer.alloc(8), Buffer.from([3, 0, 1, 9])]), senderHmac: new Uint8Array(), shouldPush: false } }],
    }),
  ).finish();

describe("the write-ahead relay", () => {
  it("passes reads through, answers included, without saving anything", async () => {
    const before = saves;
    const request = c.GetInboxIdsRequest.encode(c.GetInboxIdsRequest.fromPartial({ requests: [{ identifier: "0x" + "ab".repeat(20), identifierKind: 1 }] })).finish();
    const reply = await call("/xmtp.identity.api.v1.IdentityApi/GetInboxIds", request);
    expect(reply).toMatchObject({ status: 200, grpcStatus: "0" });
    expect(c.GetInboxIdsResponse.decode(reply.frames[0]!)).toMatchObject({ responses: [{ identifier: "0x" + "ab".repeat(20) }] });
    expect(saves).toBe(before);
  });

  it("holds a commit until the state is saved, then sends it", async () => {
    const groupId = randomBytes(16);
    let open = () => {};
    gate = new Promise<void>((resolve) => (open = resolve));
    const pending = call("/xmtp.mls.api.v1.MlsApi/SendGroupMessages", commitTo(groupId));
    await new Promise((r) => setTimeout(r, 100));
    // Held: the node has nothing yet.
    expect((await nodeGroupStats(groupId.toString("hex"))).commits).toBe(0);
    gate = undefined;
    open();
    expect(await pending).toMatchObject({ status: 200, grpcStatus: "0" });
    expect((await nodeGroupStats(groupId.toString("hex"))).commits).toBe(1);
    expect(steps.filter(([, path]) => path.endsWith("SendGroupMessages")).map(([step]) => step)).toEqual(["write-held", "write-saved", "write-forwarded", "write-answered"]);
  });

  it("refuses a write whose save failed (UNAVAILABLE), and nothing reaches the network", async () => {
    const groupId = randomBytes(16);
    refuse = true;
    try {
      expect(await call("/xmtp.mls.api.v1.MlsApi/SendGroupMessages", commitTo(groupId))).toMatchObject({ grpcStatus: "14" });
    } finally {
      refuse = false;
    }
    expect((await nodeGroupStats(groupId.toString("hex"))).commits).toBe(0);
  });

  it("passes the upstream's errors through as they are", async () => {
    const reply = await call("/xmtp.mls.api.v1.MlsApi/QueryGroupMessages", c.QueryGroupMessagesRequest.encode(c.QueryGroupMessagesRequest.fromPartial({ groupId: new Uint8Array() })).finish());
    expect(reply.grpcStatus).toBe("3");
    expect((await call("/xmtp.mls.api.v1.MlsApi/NoSuchMethod", new Uint8Array())).grpcStatus).toBe("12");
  });

  it("answers UNAVAILABLE when the upstream cannot be reached", async () => {
    const dead = await startWriteAheadRelay({ upstream: "http://127.0.0.1:9", beforeWrite: async () => {} });
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const session = connect(dead.url);
        session.on("error", reject);
        const stream = session.request({ ":method": "POST", ":path": "/xmtp.mls.api.v1.MlsApi/QueryGroupMessages", "content-type": "application/grpc" });
        stream.on("response", (h) => resolve(String(h["grpc-status"])));
        stream.end(frame(new Uint8Array()));
      });
      expect(reply).toBe("14");
    } finally {
      await dead.close();
    }
  });
});
