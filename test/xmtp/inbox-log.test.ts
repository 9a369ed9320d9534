import { describe, expect, it } from "vitest";
import { addressesFromLog, d14nInboxAddresses } from "../../lib/xmtp/inbox-log.js";
import { XmtpUnavailableError } from "../../lib/xmtp/port.js";
import { ProtobufDecodeError } from "../../lib/xmtp/protobuf-wire.js";
import { xmtpCodecs, type IdentityUpdate } from "../../local/xmtp-node/codecs.js";
import { freePort } from "../../local/redis/redis-server.js";

// The d14n replay of an inbox's identity log, checked against updates encoded by @xmtp/proto's own codecs (the
// real client's run is in test/e2e/linked-wallets.test.ts).
const A = "0x" + "aa".repeat(20);
const B = "0x" + "bb".repeat(20);
const C = "0x" + "cc".repeat(20);
const encode = (update: IdentityUpdate) => xmtpCodecs().IdentityUpdate.encode(xmtpCodecs().IdentityUpdate.fromPartial(update)).finish();
const inboxId = "ab".repeat(32);

describe("an inbox's wallets from its identity updates", () => {
  it("the creating wallet, plus each added, minus each revoked, in log order; installations and passkeys are not wallets", () => {
    const log = [
      encode({ inboxId, actions: [{ createInbox: { initialIdentifier: A.toUpperCase().replace("0X", "0x"), initialIdentifierKind: 1 } }, { add: { newMemberIdentifier: { installationPublicKey: new Uint8Array(32) } } }] }),
      encode({ inboxId, actions: [{ add: { newMemberIdentifier: { ethereumAddress: B } } }, { add: { newMemberIdentifier: { ethereumAddress: C } } }] }),
      encode({ inboxId, actions: [{ revoke: { memberToRevoke: { ethereumAddress: B } } }] }),
    ];
    expect(addressesFromLog(log).sort()).toEqual([A, C]);
    // Re-added after its revocation, it counts again.
    expect(addressesFromLog([...log, encode({ inboxId, actions: [{ add: { newMemberIdentifier: { ethereumAddress: B } } }] })]).sort()).toEqual([A, B, C]);
  });

  it("an inbox created by a passkey has no creating wallet; a malformed update is an error, not fewer wallets", () => {
    expect(addressesFromLog([encode({ inboxId, actions: [{ createInbox: { initialIdentifier: "passkey-bytes", initialIdentifierKind: 2 } }] })])).toEqual([]);
    expect(() => addressesFromLog([Uint8Array.from([0x0a, 0xff])])).toThrow(ProtobufDecodeError);
  });

  it("a gateway that cannot be reached: XmtpUnavailableError (a 503), never an empty list", async () => {
    await expect(d14nInboxAddresses(`http://127.0.0.1:${await freePort()}`, inboxId, { timeoutMs: 2000 })).rejects.toBeInstanceOf(XmtpUnavailableError);
  });
});
