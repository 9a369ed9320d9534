import { chainName } from "../shared/chains.js";
import { DependencyUnavailableError } from "../shared/errors.js";
import type { Address } from "../shared/address.js";
import { isLeaf, leaves, MAX_WALLETS, type LeafRule, type Rules } from "../shared/rules.js";

/** The outcome of checking a wallet against a group's rules. */
export type Eligibility = { readonly eligible: true } | { readonly eligible: false; readonly reason: string };

/** A leaf that needs outside data (everything but open and allowlist). */
export type ExternalLeaf = Exclude<LeafRule, { type: "open" } | { type: "allowlist" }>;

/**
 * What a person's wallets hold toward one external leaf, taken together: the leaf is met when `held ≥ needed`.
 * ERC-20 and ERC-1155 balances are summed (in base units), ERC-721 counts are summed (a token id counts once,
 * whichever wallet holds it), a POAP or a single token id is 1 when any wallet holds it.
 */
export interface Holding {
  readonly held: bigint;
  readonly needed: bigint;
}

/** What a person holds toward each leaf, and which delegations (vaults) it counted. */
export interface HoldingsRead {
  /** One holding per leaf, in order. */
  readonly holdings: Holding[];
  /** The delegations counted, as a stable fingerprint ("" when the source knows none): part of the answer's cache key. */
  readonly vaults: string;
}

/**
 * Reads, for a person's wallets (and the vaults that delegated to them), what they hold toward each external leaf:
 * one batched round of requests per decision, a second only for vaults found.
 */
export interface HoldingsSource {
  /**
   * @param wallets the person's wallets (at most {@link MAX_WALLETS}), the joining one first.
   * @throws {EligibilitySourceError} when the data cannot be read (never a denial).
   */
  read(leaves: readonly ExternalLeaf[], wallets: readonly Address[]): Promise<HoldingsRead>;
  /**
   * The fingerprint of the delegations to `wallets` on the leaves' chains now (as {@link HoldingsRead.vaults}),
   * read alone: how a cached answer is checked against delegations made since. Absent: the source knows none.
   * @throws {EligibilitySourceError}
   */
  vaults?(leaves: readonly ExternalLeaf[], wallets: readonly Address[]): Promise<string>;
}

export { MAX_WALLETS };

/** The chain or the data service could not answer; the person may retry (503, never a denial). */
export class EligibilitySourceError extends DependencyUnavailableError {
  override readonly name = "EligibilitySourceError";
  override readonly publicMessage = "Could not check this wallet's holdings right now; try again in a moment";
}

/** Decides whether a person may join under `rules`, by their wallets taken together. The only place that decides eligibility. */
export interface EligibilityChecker {
  /**
   * @param wallets one address, or the person's wallets (the joining one first; at most {@link MAX_WALLETS} are counted).
   * @param scope names what the answer may be cached under (the group id); omit to skip the cache.
   * @throws {EligibilitySourceError}
   */
  check(rules: Rules, wallets: Address | readonly Address[], scope?: string): Promise<Eligibility>;
}

/** A checker that also says which delegations an answer counted, and can read them alone (for the answer cache). */
export interface VaultAwareChecker extends EligibilityChecker {
  /** The answer and the fingerprint of the delegations it counted. @throws {EligibilitySourceError} */
  checkCounting(rules: Rules, wallets: readonly Address[]): Promise<{ answer: Eligibility; vaults: string }>;
  /** The fingerprint of the delegations to `wallets` that `rules` would count now. @throws {EligibilitySourceError} */
  vaults(rules: Rules, wallets: readonly Address[]): Promise<string>;
}

/** The wallets a decision counts: deduplicated, the first one kept first, at most {@link MAX_WALLETS}. */
export function walletsOf(wallets: Address | readonly Address[]): Address[] {
  return [...new Set(typeof wallets === "string" ? [wallets] : wallets)].slice(0, MAX_WALLETS);
}

const short = (address: string) => `${address.slice(0, 6)}…${address.slice(-4)}`;

/** What a person must do to pass a leaf, in plain words. */
export function describeLeaf(leaf: LeafRule): string {
  switch (leaf.type) {
    case "open":
      return "Anyone may join";
    case "allowlist":
      return "Be on the group's allowlist";
    case "erc20":
      // A group stored before create cleaned symbols may hold "" (a token with an empty symbol()).
      return `Hold at least ${leaf.minBalance} ${leaf.symbol?.trim() ? leaf.symbol : `of token ${short(leaf.token)}`} on ${chainName(leaf.chainId)}`;
    case "erc721": {
      const on = `on ${chainName(leaf.chainId)}`;
      const plural = leaf.minCount === 1 ? "" : "s";
      const what = leaf.name ? `${leaf.name} NFT${plural}` : `NFT${plural} from ${short(leaf.contract)}`;
      if (leaf.tokenIds) return `Hold at least ${leaf.minCount} ${what} numbered ${leaf.tokenIds.from} to ${leaf.tokenIds.to} ${on}`;
      if (leaf.name) {
        if (leaf.tokenId !== undefined) return `Hold ${leaf.name} #${leaf.tokenId} ${on}`;
        return `Hold at least ${leaf.minCount} ${what} ${on}`;
      }
      if (leaf.tokenId !== undefined) return `Hold NFT #${leaf.tokenId} from ${short(leaf.contract)} ${on}`;
      return `Hold at least ${leaf.minCount} ${what} ${on}`;
    }
    case "erc1155": {
      const which = leaf.tokenIds ? `tokens #${leaf.tokenIds.from} to #${leaf.tokenIds.to}` : `token #${leaf.tokenId ?? "?"}`;
      return `Hold at least ${leaf.minBalance} of ${which} of ${short(leaf.contract)} on ${chainName(leaf.chainId)}`;
    }
    case "poap":
      return `Hold the POAP of event #${leaf.eventId}`;
    case "coinbaseVerified":
      return leaf.attestation === "account"
        ? "Have a Coinbase-verified account (Coinbase Verifications on Base)"
        : `Be verified by Coinbase as living in ${leaf.countries?.join(", ") ?? "an allowed country"} (Coinbase Verifications on Base)`;
  }
}

const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1);

/** What it takes to join, in plain words (shown to people on the join page). */
export function describeRules(rules: Rules): string {
  if ("all" in rules) return rules.all.map(describeRules).join(", and ");
  if ("any" in rules) return `One of: ${rules.any.map(describeRules).join("; or ")}`;
  if ("of" in rules) return `At least ${rules.atLeast} of: ${rules.of.map(describeRules).join("; ")}`;
  if ("not" in rules) {
    const inner = rules.not;
    if (isLeaf(inner)) return `Do not ${lowerFirst(describeLeaf(inner))}`;
    if ("all" in inner) return `Not all of: ${inner.all.map(describeRules).join("; ")}`;
    if ("any" in inner) return `None of: ${inner.any.map(describeRules).join("; ")}`;
    if ("of" in inner) return `Fewer than ${inner.atLeast} of: ${inner.of.map(describeRules).join("; ")}`;
    return describeRules(inner.not);
  }
  return describeLeaf(rules);
}

const isExternal = (leaf: LeafRule): leaf is ExternalLeaf => leaf.type !== "open" && leaf.type !== "allowlist";

/**
 * An eligibility checker over a holdings source (on-chain by default, Airstack if configured). The person's
 * wallets are taken together (see {@link Holding}); an allowlist is met by any of them; a `not` rule holds only
 * while the wallets together do not meet its inner rule (so never while any one of them does).
 */
export function createEligibilityChecker(source: HoldingsSource): VaultAwareChecker {
  const checkCounting = async (rules: Rules, wallets: readonly Address[]): Promise<{ answer: Eligibility; vaults: string }> => {
    const external = leaves(rules).filter(isExternal);
    const { holdings, vaults } = external.length > 0 ? await source.read(external, wallets) : { holdings: [], vaults: "" };
    const passed = new Map<LeafRule, boolean>(external.map((leaf, i) => [leaf, holdings[i] !== undefined && holdings[i].held >= holdings[i].needed]));
    const result = decide(rules, wallets, passed);
    if (result.ok) return { answer: { eligible: true }, vaults };
    // Say what was counted, so a person with tokens elsewhere knows which wallets were looked at.
    const reason = wallets.length > 1 && !result.reason.includes(`your ${wallets.length} wallets`) ? `${result.reason} (counted across your ${wallets.length} wallets)` : result.reason;
    return { answer: { eligible: false, reason }, vaults };
  };
  return {
    check: async (rules, given) => (await checkCounting(rules, walletsOf(given))).answer,
    checkCounting,
    async vaults(rules, wallets) {
      const external = leaves(rules).filter(isExternal);
      return external.length > 0 && source.vaults ? source.vaults(external, wallets) : "";
    },
  };
}

function decide(rules: Rules, wallets: readonly Address[], passed: ReadonlyMap<LeafRule, boolean>): { ok: true } | { ok: false; reason: string } {
  if ("all" in rules) {
    for (const child of rules.all) {
      const r = decide(child, wallets, passed);
      if (!r.ok) return r;
    }
    return { ok: true };
  }
  if ("any" in rules || "of" in rules) {
    const list = "any" in rules ? rules.any : rules.of;
    const needed = "any" in rules ? 1 : rules.atLeast;
    const met = list.filter((child) => decide(child, wallets, passed).ok).length;
    return met >= needed ? { ok: true } : { ok: false, reason: describeRules(rules) };
  }
  if ("not" in rules) return decide(rules.not, wallets, passed).ok ? { ok: false, reason: describeRules(rules) } : { ok: true };
  switch (rules.type) {
    case "open":
      return { ok: true };
    case "allowlist": {
      if (wallets.some((w) => rules.addresses.includes(w))) return { ok: true };
      return { ok: false, reason: wallets.length > 1 ? `None of your ${wallets.length} wallets is on the group's allowlist` : "This wallet is not on the group's allowlist" };
    }
    default:
      return passed.get(rules) ? { ok: true } : { ok: false, reason: describeLeaf(rules) };
  }
}
