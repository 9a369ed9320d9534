import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createJoinLinkStore, JOIN_LINK_ID, newJoinLinkId } from "../../lib/stores/join-links.js";
import { testRedis } from "../support/test-app.js";

const store = () => createJoinLinkStore(testRedis(), `t${randomBytes(6).toString("hex")}`);
const groupId = () => randomBytes(16).toString("hex");

describe("join link store (real Redis)", () => {
  it("makes unguessable 128-bit ids", () => {
    const ids = new Set(Array.from({ length: 1000 }, newJoinLinkId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(JOIN_LINK_ID);
  });

  it("gives a group one link however many callers race to create it", async () => {
    const links = store();
    const g = groupId();
    const results = await Promise.all(Array.from({ length: 20 }, () => links.ensure(g)));
    expect(new Set(results.map((r) => r.linkId)).size).toBe(1);
    expect(results[0]).toEqual({ linkId: results[0]!.linkId, enabled: true });
    expect(await links.resolve(results[0]!.linkId)).toEqual({ groupId: g, enabled: true });
  });

  it("resolves nothing for unknown, malformed or other groups' old links", async () => {
    const links = store();
    expect(await links.resolve(newJoinLinkId())).toBeNull();
    expect(await links.resolve("../x")).toBeNull();
    expect(await links.resolve("")).toBeNull();
  });

  it("rotates: the old id stops resolving at once, the state carries over", async () => {
    const links = store();
    const g = groupId();
    const first = await links.ensure(g);
    await links.setEnabled(g, false);
    const second = await links.rotate(g);
    expect(second.linkId).not.toBe(first.linkId);
    expect(second.enabled).toBe(false);
    expect(await links.resolve(first.linkId)).toBeNull();
    expect(await links.resolve(second.linkId)).toEqual({ groupId: g, enabled: false });
    expect(await links.ensure(g)).toEqual(second);
  });

  it("turns a link off and on, creating one for a group that had none", async () => {
    const links = store();
    const g = groupId();
    const off = await links.setEnabled(g, false);
    expect(off.enabled).toBe(false);
    expect(await links.resolve(off.linkId)).toEqual({ groupId: g, enabled: false });
    expect(await links.setEnabled(g, true)).toEqual({ linkId: off.linkId, enabled: true });
  });
});
