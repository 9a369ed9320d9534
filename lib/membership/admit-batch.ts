import { MAX_GROUP_MEMBERS, XmtpOperationError, type XmtpSession } from "../xmtp/port.js";
import type { Address } from "../shared/address.js";

/** What happened when a wallet was to be added to a group. */
export type AdmitOutcome = "added" | "already-member" | "not-on-xmtp" | "full" | "refused";

/** Person-readable reasons for the outcomes that keep someone out. */
export const ADMIT_DENIAL_REASONS = {
  "not-on-xmtp": "This wallet has no XMTP inbox yet: open an XMTP app (such as xmtp.chat) with it once, then try again",
  full: "This group is full",
  refused: "XMTP would not add this wallet's inbox just now: open your XMTP app once more, then try again",
} as const;

/** A wallet to admit, with the inbox its address belongs to (null: it has none). */
export interface Candidate {
  readonly address: Address;
  readonly inboxId: string | null;
}

/** Most inboxes added in one commit (a larger batch is split into commits of this size). */
export const MAX_ADDS_PER_COMMIT = 100;

/** Told each set of outcomes as soon as it is final (see {@link admitBatch}); what it throws stops the batch. */
export type OnDecided = (decided: ReadonlyMap<Address, AdmitOutcome>) => Promise<void>;

/**
 * Admits wallets into a group in as few commits as it can: one for the whole batch, normally. The one place
 * that decides "has an inbox? already a member? room left?", whichever door (webhook, join page, operator) the
 * wallets came through. The first ones in line take the free places; the rest are "full". If XMTP refuses a
 * commit (not the network failing: the commit itself), the batch is split until the inbox it will not take is
 * found ("refused"), so one bad admission never sinks the others. Wallets left when the session's deadline
 * passes get no outcome: they wait for the next session. Each outcome is handed to `onDecided` as soon as it is
 * final (those decided without a commit first, then each commit's people as that commit lands), so a failure
 * later in the batch never loses who is already in the group.
 * @throws {import("../xmtp/port.js").XmtpUnavailableError} the network failed (what was handed to `onDecided` stands; retry the rest).
 * @throws {import("../xmtp/port.js").XmtpGroupNotFoundError}
 * @throws whatever `onDecided` throws.
 */
export async function admitBatch(
  session: XmtpSession,
  groupId: string,
  candidates: readonly Candidate[],
  onDecided: OnDecided = async () => {},
): Promise<Map<Address, AdmitOutcome>> {
  const outcomes = new Map<Address, AdmitOutcome>();
  const members = await session.listMembers(groupId);
  const present = new Set(members.map((m) => m.inboxId));
  let free = MAX_GROUP_MEMBERS - members.length;
  // Two wallets of one inbox are one admission: both get its outcome.
  const byInbox = new Map<string, Address[]>();
  for (const { address, inboxId } of candidates) {
    if (inboxId === null) outcomes.set(address, "not-on-xmtp");
    // Checked before adding, so a retry of a join that already landed makes no new commit.
    else if (present.has(inboxId)) outcomes.set(address, "already-member");
    else if (byInbox.has(inboxId)) byInbox.get(inboxId)!.push(address);
    else if (free > 0) {
      byInbox.set(inboxId, [address]);
      free--;
    } else outcomes.set(address, "full");
  }
  if (outcomes.size > 0) await onDecided(new Map(outcomes));
  const decide = async (inboxIds: readonly string[], outcome: AdmitOutcome) => {
    const decided = new Map<Address, AdmitOutcome>();
    for (const id of inboxIds) for (const address of byInbox.get(id) ?? []) decided.set(address, outcome);
    for (const [address, o] of decided) outcomes.set(address, o);
    await onDecided(decided);
  };
  const add = async (inboxIds: readonly string[]): Promise<void> => {
    if (Date.now() >= session.deadline) return;
    let refused = false;
    try {
      await session.addMembers(groupId, inboxIds);
    } catch (error) {
      if (!(error instanceof XmtpOperationError)) throw error;
      refused = true;
    }
    if (!refused) return decide(inboxIds, "added");
    if (inboxIds.length === 1) return decide(inboxIds, "refused");
    const half = Math.ceil(inboxIds.length / 2);
    await add(inboxIds.slice(0, half));
    await add(inboxIds.slice(half));
  };
  const pending = [...byInbox.keys()];
  for (let i = 0; i < pending.length; i += MAX_ADDS_PER_COMMIT) await add(pending.slice(i, i + MAX_ADDS_PER_COMMIT));
  return outcomes;
}
