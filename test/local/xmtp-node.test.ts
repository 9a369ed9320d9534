import { afterAll, describe, expect, it } from "vitest";
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
