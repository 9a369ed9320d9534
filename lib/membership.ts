import { MAX_GROUP_MEMBERS, type Address, type XmtpSession } from "./xmtp/port.js";

/** What happened when a wallet was to be added to a group. */
export type AdmitOutcome = "added" | "already-member" | "not-on-xmtp" | "full";

/** Person-readable reasons for the outcomes that keep someone out. */
export const ADMIT_DENIAL_REASONS = {
  "not-on-xmtp": "This wallet has no XMTP inbox yet: open an XMTP app (such as xmtp.chat) with it once, then try again",
  full: "This group is full",
} as const;

/**
 * Adds the wallet's inbox to the group unless it is already there, has no XMTP identity,
 * or the group is at XMTP's member limit. The one place these three questions are decided,
 * whichever door (webhook, join page, operator) the request came through.
 * @throws {import("./xmtp/port.js").XmtpUnavailableError | import("./xmtp/port.js").XmtpGroupNotFoundError}
 */
export async function admitMember(session: XmtpSession, groupId: string, address: Address): Promise<AdmitOutcome> {
  const inboxId = await session.findInboxId(address);
  if (inboxId === null) return "not-on-xmtp";
  const members = await session.listMembers(groupId);
  // Checked before adding so a retry of a join that already landed makes no new commit.
  if (members.some((m) => m.inboxId === inboxId)) return "already-member";
  if (members.length >= MAX_GROUP_MEMBERS) return "full";
  await session.addMembers(groupId, [inboxId]);
  return "added";
}
