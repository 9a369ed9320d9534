import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcCall } from "../support/grpc-call.js";
import { decodeMessage, encodeMessage } from "../../lib/xmtp/protobuf-wire.js";
import {
  GetNewestEnvelopeRequest,
  GetNewestEnvelopeResponse,
  PublishClientEnvelopesRequest,
  QueryEnvelopesRequest,
  QueryEnvelopesResponse,
  TOPIC_KIND,
  UnsignedOriginatorEnvelope,
  type UnsignedOriginatorEnvelopeMessage,
} from "../../lib/xmtp/xmtpv4.js";
import { startLocalXmtpNode, V3_RETIRED_MESSAGE, V3_STREAMING_RETIRED_MESSAGE, type LocalXmtpNode } from "../../local/xmtp-node/xmtp-node.js";
import { xmtpCodecs } from "../../local/xmtp-node/codecs.js";
import { MlsWireError, readGroupMessage, readKeyPackageInstallationKey } from "../../local/xmtp-node/mls-wire.js";
import { MAX_PAGE_SIZE, NodeState } from "../../local/xmtp-node/node-state.js";
import { nodeHealth, nodeRequest } from "../../local/xmtp-node/launcher.js";
import { createPerson, type Person } from "../support/xmtp-people.js";

// RFC 9420 wire pieces, built by hand.
const vector = (bytes: number[]) => [bytes.length, ...bytes]; // lengths < 64 take one byte
const u16 = (n: number) => [n >> 8, n & 0xff];
const epoch = [0, 0, 0, 0, 0, 0, 0, 7];
const privateMessage = (groupId: number[], contentType: number) => new Uint8Array([...u16(1), ...u16(2), ...vector(groupId), ...epoch, contentType, ...vector([]), ...vector([9])]);
const publicMessage = (groupId: number[], contentType: number) =>
  new Uint8Array([...u16(1), ...u16(1), ...vector(groupId), ...epoch, 1, 0, 0, 0, 3, ...vector([1, 2]), contentType]);
const keyPackage = (signatureKey: number[]) => [...u16(1), ...u16(1), ...vector([1, 1]), ...vector([2, 2]), ...vector(signatureKey), 0xaa];
const paging = (direction: number, idCursor: number, limit = 0) => ({ direction, limit, idCursor: { toNumber: () => idCursor } });

describe("the local node's reading of MLS messages", () => {
  it("finds the group id and the commit flag of private and public messages", () => {
    expect(readGroupMessage(privateMessage([0xab, 0xcd], 3))).toEqual({ groupId: new Uint8Array([0xab, 0xcd]), isCommit: true });
    expect(readGroupMessage(privateMessage([0xab], 1)).isCommit).toBe(false);
    expect(readGroupMessage(publicMessage([0x01, 0x02, 0x03], 3))).toEqual({ groupId: new Uint8Array([1, 2, 3]), isCommit: true });
    expect(readGroupMessage(publicMessage([0x01], 2)).isCommit).toBe(false);
  });

  it("reads two-byte vector lengths (RFC 9420 §2.1.2)", () => {
    const groupId = Array.from({ length: 70 }, (_, i) => i);
    const bytes = new Uint8Array([...u16(1), ...u16(2), 0x40, 70, ...groupId, ...epoch, 3]);
    expect(readGroupMessage(bytes).groupId).toHaveLength(70);
  });

  it("refuses what is not a group message, or is cut short", () => {
    expect(() => readGroupMessage(new Uint8Array([...u16(1), ...u16(3), 0]))).toThrow(MlsWireError);
    expect(() => readGroupMessage(privateMessage([1, 2], 3).subarray(0, 8))).toThrow(/truncated/);
  });

  it("takes a key package's installation key from its leaf node, bare or wrapped in an MLSMessage", () => {
    expect(readKeyPackageInstallationKey(new Uint8Array(keyPackage([7, 7, 7])))).toEqual(new Uint8Array([7, 7, 7]));
    expect(readKeyPackageInstallationKey(new Uint8Array([...u16(1), ...u16(5), ...keyPackage([8, 8])]))).toEqual(new Uint8Array([8, 8]));
  });
});

describe("the local node's storage", () => {
  it("pages as the real node does: 100 at most, descending unless asked, cursor exclusive and only after a full page", () => {
    const state = new NodeState();
    // Distinct payloads (the node drops a repeated one).
    for (let i = 0; i < 250; i++) {
      state.sendGroupMessages([{ data: new Uint8Array([...privateMessage([1], 1), i & 0xff, i >> 8]), senderHmac: new Uint8Array(), shouldPush: true }]);
    }
    const group = new Uint8Array([1]);
    const first = state.queryGroupMessages(group, paging(1, 0));
    expect(first.messages).toHaveLength(MAX_PAGE_SIZE);
    expect(first.pagingInfo.idCursor).toBe(first.messages.at(-1)!.id);
    const second = state.queryGroupMessages(group, paging(1, first.pagingInfo.idCursor));
    expect(second.messages[0]!.id).toBeGreaterThan(first.messages.at(-1)!.id);
    const third = state.queryGroupMessages(group, paging(1, second.pagingInfo.idCursor));
    expect(third.messages).toHaveLength(50);
    expect(third.pagingInfo.idCursor).toBe(0);
    const newest = state.queryGroupMessages(group, undefined);
    expect(newest.messages[0]!.id).toBe(third.messages.at(-1)!.id);
    expect(state.queryGroupMessages(group, paging(2, newest.messages[0]!.id, 5)).messages.map((m) => m.id)).toEqual(
      newest.messages.slice(1, 6).map((m) => m.id),
    );
  });

  it("keeps one copy of a message sent twice, and flags commits", () => {
    const state = new NodeState();
    const commit = { data: privateMessage([5], 3), senderHmac: new Uint8Array(), shouldPush: false };
    state.sendGroupMessages([commit]);
    state.sendGroupMessages([commit]);
    state.sendGroupMessages([{ ...commit, data: privateMessage([5], 1) }]);
    expect(state.groupStats("05")).toEqual({ messages: 2, commits: 1 });
  });

  it("follows which inbox an address belongs to: created, added, revoked", () => {
    const state = new NodeState();
    state.publishIdentityUpdate({ inboxId: "inbox-1", actions: [{ createInbox: { initialIdentifier: "0xAAAA", initialIdentifierKind: 1 } }] });
    state.publishIdentityUpdate({ inboxId: "inbox-1", actions: [{ add: { newMemberIdentifier: { ethereumAddress: "0xbbbb" } } }] });
    expect(state.inboxIdOf("0xaaaa")).toBe("inbox-1");
    expect(state.inboxIdOf("0xBBBB")).toBe("inbox-1");
    state.publishIdentityUpdate({ inboxId: "inbox-1", actions: [{ revoke: { memberToRevoke: { ethereumAddress: "0xbbbb" } } }] });
    expect(state.inboxIdOf("0xbbbb")).toBeUndefined();
    expect(state.identityUpdates("inbox-1", 0)).toHaveLength(3);
    expect(state.identityUpdates("inbox-1", state.identityUpdates("inbox-1", 0)[1]!.sequenceId)).toHaveLength(1);
  });

  it("puts back exactly what it dumped (benchmark fixtures), replacing what it held, and goes on numbering after it", () => {
    const state = new NodeState();
    state.sendGroupMessages([{ data: privateMessage([7], 3), senderHmac: new Uint8Array([1]), shouldPush: false }]);
    state.publishIdentityUpdate({ inboxId: "inbox-7", actions: [{ createInbox: { initialIdentifier: "0xCCCC", initialIdentifierKind: 1 } }] });
    const dump = state.dump();
    const other = new NodeState();
    other.sendGroupMessages([{ data: privateMessage([8], 1), senderHmac: new Uint8Array(), shouldPush: true }]);
    other.load(dump);
    expect(other.groupStats("08")).toEqual({ messages: 0, commits: 0 });
    expect(other.groupStats("07")).toEqual({ messages: 1, commits: 1 });
    expect(other.inboxIdOf("0xcccc")).toBe("inbox-7");
    // A repeat of a loaded message is still one copy; a new one is numbered after everything loaded.
    const [again] = other.sendGroupMessages([{ data: privateMessage([7], 3), senderHmac: new Uint8Array([1]), shouldPush: false }]);
    const [fresh] = other.sendGroupMessages([{ data: privateMessage([7], 1), senderHmac: new Uint8Array(), shouldPush: true }]);
    expect(again!.id).toBe(state.queryGroupMessages(new Uint8Array([7]), undefined).messages[0]!.id);
    expect(fresh!.id).toBeGreaterThan(again!.id);
    expect(() => other.load(Buffer.from("not a dump"))).toThrow();
  });

  it("has codecs for every message it serves", () => {
    const c = xmtpCodecs();
    const bytes = c.QueryGroupMessagesRequest.encode(c.QueryGroupMessagesRequest.fromPartial({ groupId: new Uint8Array([1]), pagingInfo: { direction: 1, limit: 3, idCursor: 42 } })).finish();
    const decoded = c.QueryGroupMessagesRequest.decode(bytes);
    expect(decoded.pagingInfo?.idCursor.toNumber()).toBe(42);
  });
});

describe("the running local node (shared by the suite)", () => {
  const people: Person[] = [];
  afterAll(async () => {
    for (const p of people) await p.close();
  });

  it("answers its health check", async () => {
    expect(await nodeHealth()).toMatchObject({ ok: true });
  });

  it("carries 250 messages between two real clients over three pages", async () => {
    const [sender, reader] = await Promise.all([createPerson(), createPerson()]);
    people.push(sender, reader);
    const group = await sender.client.conversations.createGroup([reader.inboxId]);
    for (let i = 0; i < 250; i++) await group.sendText(`m${i}`, true);
    await group.publishMessages();
    const calls = (await nodeRequest<{ calls: Record<string, number> }>("/stats")).calls.QueryGroupMessages ?? 0;
    const seen = await reader.group(group.id);
    const texts = (await seen!.messages()).map((m) => m.content).filter((c) => typeof c === "string");
    expect(texts).toHaveLength(250);
    expect(texts[0]).toBe("m0");
    expect(texts.at(-1)).toBe("m249");
    expect((await nodeRequest<{ calls: Record<string, number> }>("/stats")).calls.QueryGroupMessages! - calls).toBeGreaterThanOrEqual(3);
  }, 60_000);
});

describe("the local node's decentralized face (d14n) and V3's cutover", () => {
  const c = xmtpCodecs();
  let node: LocalXmtpNode;
  beforeAll(async () => {
    node = await startLocalXmtpNode({ port: 0, d14n: { gatewayPort: 0, nodePort: 0 } });
  });
  afterAll(() => node.close());
  const unary = async (url: string, path: string, body: Uint8Array) => {
    const answer = await grpcCall(url, path, body);
    return { status: answer.grpcStatus, grpcMessage: answer.grpcMessage, reply: answer.frames[0] ?? new Uint8Array() };
  };
  const groupTopic = (groupId: number[]) => new Uint8Array([TOPIC_KIND.groupMessages, ...groupId]);
  const served = (bytes: Uint8Array) => {
    const { envelopes } = decodeMessage<{ envelopes: { unsignedOriginatorEnvelope: Uint8Array }[] }>(QueryEnvelopesResponse, bytes);
    return envelopes.map((e) => decodeMessage<UnsignedOriginatorEnvelopeMessage>(UnsignedOriginatorEnvelope, e.unsignedOriginatorEnvelope));
  };
  const query = (topics: Uint8Array[], lastSeen: Map<number, bigint> = new Map()) =>
    encodeMessage(QueryEnvelopesRequest, { query: { topics, lastSeen: { nodeIdToSequenceId: lastSeen } }, limit: 100 });

  it("serves what was written over V3 on d14n: commits on originator 0, messages on 10, V3 ids as sequence ids, in xmtpd's order", async () => {
    const stored = node.state.sendGroupMessages([
      { data: privateMessage([0x51], 1), senderHmac: new Uint8Array(), shouldPush: true },
      { data: privateMessage([0x51], 3), senderHmac: new Uint8Array(), shouldPush: false },
      { data: new Uint8Array([...privateMessage([0x51], 1), 7]), senderHmac: new Uint8Array(), shouldPush: true },
    ]);
    const answer = served((await unary(node.nodeUrl!, "/xmtp.xmtpv4.message_api.ReplicationApi/QueryEnvelopes", query([groupTopic([0x51])]))).reply);
    expect(answer.map((e) => [e.originatorNodeId, Number(e.originatorSequenceId)])).toEqual([
      [0, stored[1]!.id],
      [10, stored[0]!.id],
      [10, stored[2]!.id],
    ]);
    // Nanoseconds grow in publish order; a cursor is exclusive, per originator.
    expect(answer[0]!.originatorNs).toBeGreaterThan(answer[1]!.originatorNs);
    const after = served((await unary(node.nodeUrl!, "/xmtp.xmtpv4.message_api.ReplicationApi/QueryEnvelopes", query([groupTopic([0x51])], new Map([[10, BigInt(stored[0]!.id)]])))).reply);
    expect(after.map((e) => Number(e.originatorSequenceId))).toEqual([stored[1]!.id, stored[2]!.id]);
  });

  it("stores a d14n publish once, serves it over V3 too, and answers GetNewestEnvelope one slot per topic, empty ones included", async () => {
    const envelope = { aad: { targetTopic: groupTopic([0x52]) }, groupMessage: c.GroupMessageInput.encode(c.GroupMessageInput.fromPartial({ v1: { data: privateMessage([0x52], 1), senderHmac: new Uint8Array(), shouldPush: true } })).finish() };
    const published = await unary(node.gatewayUrl!, "/xmtp.xmtpv4.payer_api.PayerApi/PublishClientEnvelopes", encodeMessage(PublishClientEnvelopesRequest, { envelopes: [envelope, envelope] }));
    expect(published.status).toBe("0");
    expect(node.state.groupStats("52")).toEqual({ messages: 1, commits: 0 });
    expect(node.state.queryGroupMessages(new Uint8Array([0x52]), undefined).messages).toHaveLength(1);
    const newest = decodeMessage<{ results: { originatorEnvelope?: unknown }[] }>(
      GetNewestEnvelopeResponse,
      (await unary(node.nodeUrl!, "/xmtp.xmtpv4.message_api.ReplicationApi/GetNewestEnvelope", encodeMessage(GetNewestEnvelopeRequest, { topics: [groupTopic([0x53]), groupTopic([0x52])] }))).reply,
    );
    expect(newest.results.map((r) => r.originatorEnvelope !== undefined)).toEqual([false, true]);
  });

  it("after the cutover, refuses V3 writes and subscriptions with xmtp-node-go's message, and keeps serving V3 queries and d14n writes", async () => {
    const send = c.SendGroupMessagesRequest.encode(c.SendGroupMessagesRequest.fromPartial({ messages: [{ v1: { data: privateMessage([0x54], 1), senderHmac: new Uint8Array(), shouldPush: true } }] })).finish();
    expect((await unary(node.url, "/xmtp.mls.api.v1.MlsApi/SendGroupMessages", send)).status).toBe("0");
    await nodeRequest("/control", { url: node.url, body: { d14nCutover: true } });
    const refused = await unary(node.url, "/xmtp.mls.api.v1.MlsApi/SendGroupMessages", send);
    expect(refused).toMatchObject({ status: "14", grpcMessage: V3_RETIRED_MESSAGE });
    expect(await unary(node.url, "/xmtp.mls.api.v1.MlsApi/SubscribeGroupMessages", new Uint8Array())).toMatchObject({ status: "14", grpcMessage: V3_STREAMING_RETIRED_MESSAGE });
    const queried = await unary(node.url, "/xmtp.mls.api.v1.MlsApi/QueryGroupMessages", c.QueryGroupMessagesRequest.encode(c.QueryGroupMessagesRequest.fromPartial({ groupId: new Uint8Array([0x54]) })).finish());
    expect(queried.status).toBe("0");
    const envelope = { aad: { targetTopic: groupTopic([0x54]) }, groupMessage: c.GroupMessageInput.encode(c.GroupMessageInput.fromPartial({ v1: { data: privateMessage([0x54], 3), senderHmac: new Uint8Array(), shouldPush: false } })).finish() };
    expect((await unary(node.gatewayUrl!, "/xmtp.xmtpv4.payer_api.PayerApi/PublishClientEnvelopes", encodeMessage(PublishClientEnvelopesRequest, { envelopes: [envelope] }))).status).toBe("0");
    expect(node.state.groupStats("54")).toEqual({ messages: 2, commits: 1 });
    expect((await nodeHealth(node.url))?.d14nCutover).toBe(true);
  });
});
