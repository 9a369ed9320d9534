import { connect, createServer } from "node:http2";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { decodeMessage, encodeMessage } from "../../../lib/xmtp/protobuf-wire.js";
import { GetInboxIdsRequest, GetInboxIdsResponse, GetNodesResponse, PublishClientEnvelopesRequest, TOPIC_KIND, type GetNodesResponseMessage } from "../../../lib/xmtp/xmtpv4.js";
import { V3_RETIRED_MESSAGE } from "../../../local/xmtp-node/xmtp-node.js";
import { xmtpCodecs } from "../../../local/xmtp-node/codecs.js";
import { LOCAL_XMTP_URL, nodeHealth } from "../../../local/xmtp-node/launcher.js";
import { frame } from "../../../lib/xmtp/grpc-wire.js";
import { grpcCall } from "../../support/grpc-call.js";
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

/** One unary gRPC call through the relay (or `url`). */
const call = (path: string, body: Uint8Array, url = relay.url) => grpcCall(url, path, body);

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
  });

  it("fails closed: a call it has never heard of is held until saved, and refused when the save fails", async () => {
    const before = saves;
    // Saved first, then forwarded (the node answers UNIMPLEMENTED).
    expect((await call("/xmtp.mls.api.v1.MlsApi/PublishSomethingNew", new Uint8Array([1, 2, 3]))).grpcStatus).toBe("12");
    expect(saves).toBe(before + 1);
    expect(steps.filter(([, detail]) => detail.includes("PublishSomethingNew")).map(([step]) => step)).toEqual(["write-held", "write-saved", "write-forwarded", "write-answered"]);
    refuse = true;
    try {
      const refused = await call("/xmtp.xmtpv4.payer_api.PayerApi/PublishSomethingNew", new Uint8Array([1]));
      expect(refused.grpcStatus).toBe("14");
    } finally {
      refuse = false;
    }
  });

  it("never forwards a write it held once it is closed (the client it served was let go)", async () => {
    let open = () => {};
    const gateHeld = new Promise<void>((resolve) => (open = resolve));
    let held = () => {};
    const isHeld = new Promise<void>((resolve) => (held = resolve));
    const closing = await startWriteAheadRelay({
      upstream: LOCAL_XMTP_URL,
      beforeWrite: async () => {
        held();
        await gateHeld;
      },
    });
    const groupId = randomBytes(16);
    const pending = call("/xmtp.mls.api.v1.MlsApi/SendGroupMessages", commitTo(groupId), closing.url).catch((error: unknown) => error);
    await isHeld;
    await closing.close();
    open();
    await pending;
    await new Promise((r) => setTimeout(r, 100));
    expect((await nodeGroupStats(groupId.toString("hex"))).commits).toBe(0);
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

describe("the write-ahead relay on the decentralized network (d14n)", () => {
  let d14n: WriteAheadRelay;
  let d14nSaves = 0;
  let d14nRefuse = false;
  const d14nSteps: [RelayStep, string][] = [];
  beforeAll(async () => {
    d14n = await startWriteAheadRelay({
      upstream: LOCAL_XMTP_URL,
      gateway: inject("xmtpGateway"),
      beforeWrite: async () => {
        d14nSaves++;
        if (d14nRefuse) throw new Error("Redis cut");
      },
      onStep: (step, detail) => void d14nSteps.push([step, detail]),
    });
  });
  afterAll(() => d14n.close());
  const gatewayCall = (path: string, body: Uint8Array) => call(path, body, d14n.gatewayUrl!);
  const publish = (envelopes: Record<string, unknown>[]) => encodeMessage(PublishClientEnvelopesRequest, { envelopes });
  const groupMessage = (groupId: Buffer) => ({
    aad: { targetTopic: Buffer.concat([Buffer.from([TOPIC_KIND.groupMessages]), groupId]) },
    groupMessage: c.GroupMessageInput.encode(c.GroupMessageInput.fromPartial(c.SendGroupMessagesRequest.decode(commitTo(groupId)).messages[0])).finish(),
  });

  it("names its own forwarders for the gateway's nodes, and reads pass through them unsaved", async () => {
    const nodes = decodeMessage<GetNodesResponseMessage>(GetNodesResponse, (await gatewayCall("/xmtp.xmtpv4.payer_api.PayerApi/GetNodes", new Uint8Array())).frames[0]!).nodes;
    expect(nodes.size).toBe(1);
    const forwarder = [...nodes.values()][0]!;
    expect(forwarder).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(forwarder).not.toBe((await nodeHealth())?.gatewayUrl);
    const before = d14nSaves;
    const health = await call("/grpc.health.v1.Health/Check", new Uint8Array(), forwarder);
    expect(health).toMatchObject({ grpcStatus: "0" });
    const inbox = await call("/xmtp.xmtpv4.message_api.ReplicationApi/GetInboxIds", encodeMessage(GetInboxIdsRequest, { requests: [{ identifier: "0x" + "cd".repeat(20), identifierKind: 1 }] }), forwarder);
    expect(decodeMessage<{ responses: { identifier: string }[] }>(GetInboxIdsResponse, inbox.frames[0]!).responses[0]?.identifier).toBe("0x" + "cd".repeat(20));
    // Unknown calls are writes on the forwarder too.
    d14nRefuse = true;
    try {
      expect((await call("/xmtp.xmtpv4.message_api.ReplicationApi/PublishPayerEnvelopes", new Uint8Array([1]), forwarder)).grpcStatus).toBe("14");
    } finally {
      d14nRefuse = false;
    }
    expect(d14nSaves).toBe(before + 1);
  });

  it("holds a commit published to the gateway until the state is saved, and refuses it when the save fails", async () => {
    const saved = randomBytes(16);
    const before = d14nSaves;
    expect(await gatewayCall("/xmtp.xmtpv4.payer_api.PayerApi/PublishClientEnvelopes", publish([groupMessage(saved)]))).toMatchObject({ grpcStatus: "0" });
    expect(d14nSaves).toBe(before + 1);
    expect((await nodeGroupStats(saved.toString("hex"))).commits).toBe(1);
    expect(d14nSteps.filter(([, detail]) => detail.endsWith("PublishClientEnvelopes SendGroupMessages")).map(([step]) => step)).toEqual(["write-held", "write-saved", "write-forwarded", "write-answered"]);
    const refused = randomBytes(16);
    d14nRefuse = true;
    try {
      expect((await gatewayCall("/xmtp.xmtpv4.payer_api.PayerApi/PublishClientEnvelopes", publish([groupMessage(refused)]))).grpcStatus).toBe("14");
    } finally {
      d14nRefuse = false;
    }
    expect((await nodeGroupStats(refused.toString("hex"))).commits).toBe(0);
  });

  it("notices V3's retirement message on a write's answer", async () => {
    let retired = 0;
    const fake = createServer();
    fake.on("stream", (stream) => {
      stream.on("data", () => undefined);
      stream.on("end", () => stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "14", "grpc-message": encodeURIComponent(V3_RETIRED_MESSAGE) }, { endStream: true }));
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const port = (fake.address() as { port: number }).port;
    const retiring = await startWriteAheadRelay({ upstream: `http://127.0.0.1:${port}`, beforeWrite: async () => {}, onV3Retired: () => retired++ });
    try {
      expect((await call("/xmtp.mls.api.v1.MlsApi/QueryGroupMessages", new Uint8Array(), retiring.url)).grpcStatus).toBe("14");
      expect(retired).toBe(1);
    } finally {
      await retiring.close();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });
});
