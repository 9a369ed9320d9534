import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Address } from "../../lib/shared/address.js";
import type { Rules } from "../../lib/shared/rules.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { reverifyMembers, warningText } from "../../lib/use-cases/reverify.js";
import { XmtpUnavailableError, type XmtpPort } from "../../lib/xmtp/port.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { createTestApp, type TestApp } from "../support/test-app.js";

// Removals with a warning and a grace period, over real Redis, anvil and the XMTP double (the real client's DM is
// checked in test/e2e/linked-wallets.test.ts). The run's clock is passed in, so "25 hours later" is a number.
let chain: LocalChain;
let token: Address;
beforeAll(async () => {
  chain = await startLocalChain(100);
  token = (await chain.deploy("TestERC20", ["Gate", "GATE", 18])).toLowerCase() as Address;
}, 60_000);
afterAll(() => chain?.stop());

const HOUR = 3_600_000;
const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const gate: () => Rules = () => ({ type: "erc20", chainId: 100, token, minBalance: "1", decimals: 18, symbol: "GATE" });
const REASON = "Hold at least 1 GATE on Gnosis";

async function setup(graceHours = "24"): Promise<{ t: TestApp; groupId: string; join: (address: Address) => Promise<void> }> {
  const t = createTestApp({ env: { RPC_URL_100: chain.url, ELIGIBILITY_CACHE_TTL_SECONDS: "0", REVERIFY_GRACE_HOURS: graceHours } });
  const info = await t.app.xmtp.withSession((s) => s.createGroup({ name: "Holders", description: "" }));
  await t.app.registry.insertPending({ groupId: info.groupId, name: "Holders", description: "", rules: gate() });
  await t.app.registry.activate(info.groupId, "L");
  const join = async (address: Address) => {
    t.network.register(address);
    await chain.write(token, "TestERC20", "mint", [address, 10n ** 18n]);
    expect(await decideJoin(t.app, { groupId: info.groupId, address }, "join-page")).toEqual({ status: "SUCCESS" });
  };
  return { t, groupId: info.groupId, join };
}
const drop = (address: Address) => chain.write(token, "TestERC20", "burn", [address, 10n ** 18n]);

describe("removals with a warning and a grace period", () => {
  it("warns by direct message first, keeps the member through the grace period, removes at the first run after it", async () => {
    const { t, groupId, join } = await setup();
    const member = wallet();
    await join(member);
    await drop(member);
    const start = Date.now();

    const first = await reverifyMembers(t.app, { dryRun: false, now: () => start });
    const removeAfter = new Date(start + 24 * HOUR).toISOString();
    expect(first.warned).toEqual([{ groupId, address: member, reason: REASON, removeAfter }]);
    expect(first.removed).toEqual([]);
    expect(t.network.directMessages).toEqual([{ to: t.network.inboxes.get(member), text: warningText("Holders", REASON, new Date(removeAfter)) }]);
    expect(t.network.directMessages[0]!.text).toMatch(/Hold at least 1 GATE on Gnosis\. Unless you meet them again, you will be removed at the first check after \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(t.network.memberAddresses(groupId)).toContain(member);

    const during = await reverifyMembers(t.app, { dryRun: false, now: () => start + 23 * HOUR });
    expect(during).toMatchObject({ warned: [], removed: [], inGrace: 1 });
    expect(t.network.directMessages).toHaveLength(1);

    const after = await reverifyMembers(t.app, { dryRun: false, now: () => start + 24 * HOUR });
    expect(after.removed).toEqual([{ groupId, address: member, reason: REASON }]);
    expect(t.network.memberAddresses(groupId)).not.toContain(member);
    expect((await t.app.notices.list(groupId)).size).toBe(0);
    const { entries } = await t.app.audit.list(groupId, { offset: 0, limit: 10, kind: "changes" });
    expect(entries.filter((e) => e.address === member).map((e) => `${e.action}:${e.outcome}`)).toEqual(["remove:removed", "warn:warned", "join:added"]);
  });

  it("qualifying again during the grace period calls the removal off (audited), and a later drop is warned afresh", async () => {
    const { t, groupId, join } = await setup();
    const member = wallet();
    await join(member);
    await drop(member);
    const start = Date.now();
    expect((await reverifyMembers(t.app, { dryRun: false, now: () => start })).warned).toHaveLength(1);
    await chain.write(token, "TestERC20", "mint", [member, 10n ** 18n]);
    const back = await reverifyMembers(t.app, { dryRun: false, now: () => start + 2 * HOUR });
    expect(back.cancelled).toEqual([{ groupId, address: member }]);
    expect((await reverifyMembers(t.app, { dryRun: false, now: () => start + 48 * HOUR })).removed).toEqual([]);
    expect(t.network.memberAddresses(groupId)).toContain(member);
    expect((await t.app.audit.list(groupId, { offset: 0, limit: 10, kind: "changes" })).entries[0]).toMatchObject({ action: "warn", outcome: "warning-cancelled", address: member });
    await drop(member);
    const again = await reverifyMembers(t.app, { dryRun: false, now: () => start + 49 * HOUR });
    expect(again.warned).toHaveLength(1);
    expect(again.removed).toEqual([]);
  });

  it("a dry run says who would be warned and sends nothing, records nothing", async () => {
    const { t, groupId, join } = await setup();
    const member = wallet();
    await join(member);
    await drop(member);
    const dry = await reverifyMembers(t.app, { dryRun: true });
    expect(dry.warned).toMatchObject([{ groupId, address: member, reason: REASON }]);
    expect(t.network.directMessages).toEqual([]);
    expect((await t.app.notices.list(groupId)).size).toBe(0);
  });

  it("a warning XMTP would not send: no notice stands, so nobody is removed on a warning never sent", async () => {
    const { t, groupId, join } = await setup();
    const member = wallet();
    await join(member);
    await drop(member);
    const start = Date.now();
    const refusing: XmtpPort = {
      ...t.app.xmtp,
      withSession: (work, options) => t.app.xmtp.withSession((s) => work({ ...s, sendDirectMessage: () => Promise.reject(new XmtpUnavailableError("down")) }), options),
    };
    const refused = await reverifyMembers({ ...t.app, xmtp: refusing }, { dryRun: false, now: () => start });
    expect(refused).toMatchObject({ warned: [], warningsDeferred: 1, removed: [], failedGroups: [] });
    expect((await t.app.notices.list(groupId)).size).toBe(0);
    // Long after: warned now (the grace starts now), not removed.
    const later = await reverifyMembers(t.app, { dryRun: false, now: () => start + 30 * HOUR });
    expect(later.removed).toEqual([]);
    expect(later.warned).toHaveLength(1);
    expect(t.network.memberAddresses(groupId)).toContain(member);
  });

  it("warnings go out in bounded batches: the rest are warned by the next run", async () => {
    const { t, join } = await setup();
    const members = [wallet(), wallet(), wallet()];
    for (const m of members) await join(m);
    for (const m of members) await drop(m);
    const first = await reverifyMembers(t.app, { dryRun: false, limits: { warningsPerGroup: 2 } });
    expect(first.warned).toHaveLength(2);
    expect(first.warningsDeferred).toBe(1);
    const second = await reverifyMembers(t.app, { dryRun: false, limits: { warningsPerGroup: 2 } });
    expect(second.warned).toHaveLength(1);
    expect(second.inGrace).toBe(2);
    expect(t.network.directMessages).toHaveLength(3);
  });

  it("REVERIFY_GRACE_HOURS=0 removes at once, as before", async () => {
    const { t, groupId, join } = await setup("0");
    const member = wallet();
    await join(member);
    await drop(member);
    expect((await reverifyMembers(t.app, { dryRun: false })).removed).toEqual([{ groupId, address: member, reason: REASON }]);
    expect(t.network.directMessages).toEqual([]);
  });
});
