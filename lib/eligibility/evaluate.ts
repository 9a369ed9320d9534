import { chainName } from "../shared/chains.js";
import { DependencyUnavailableError } from "../shared/errors.js";
import type { Address } from "../shared/address.js";
import { leaves, type LeafRule, type Rules } from "../shared/rules.js";

/** The outcome of checking a wallet against a group's rules. */
export type Eligibility = { readonly eligible: true } | { readonly eligible: false; readonly reason: string };

/** A leaf that needs outside data (everything but open and allowlist). */
export type ExternalLeaf = Exclude<LeafRule, { type: "open" } | { type: "allowlist" }>;

/** Answers, for one wallet, whether it passes each external leaf: one batched round of requests per decision. */
export interface HoldingsSource {
  /**
   * @returns one boolean per leaf, in order.
   * @throws {EligibilitySourceError} when the data cannot be read (never a denial).
   */
  check(leaves: readonly ExternalLeaf[], address: Address): Promise<boolean[]>;
}

/** The chain or the data service could not answer; the person may retry (503, never a denial). */
export class EligibilitySourceError extends DependencyUnavailableError {
  override readonly name = "EligibilitySourceError";
  override readonly publicMessage = "Could not check this wallet's holdings right now; try again in a moment";
}

/** Decides whether `address` may join under `rules`. The only place that decides eligibility. */
export interface EligibilityChecker {
  /**
   * @param scope names what the answer may be cached under (the group id); omit to skip the cache.
   * @throws {EligibilitySourceError}
   */
  check(rules: Rules, address: Address, scope?: string): Promise<Eligibility>;
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
      if (leaf.name) {
        if (leaf.tokenId !== undefined) return `Hold ${leaf.name} #${leaf.tokenId} ${on}`;
        return `Hold at least ${leaf.minCount} ${leaf.name} NFT${plural} ${on}`;
      }
      if (leaf.tokenId !== undefined) return `Hold NFT #${leaf.tokenId} from ${short(leaf.contract)} ${on}`;
      return `Hold at least ${leaf.minCount} NFT${plural} from ${short(leaf.contract)} ${on}`;
    }
    case "erc1155":
      return `Hold at least ${leaf.minBalance} of token #${leaf.tokenId} of ${short(leaf.contract)} on ${chainName(leaf.chainId)}`;
    case "poap":
      return `Hold the POAP of event #${leaf.eventId}`;
  }
}

/** What it takes to join, in plain words (shown to people on the join page). */
export function describeRules(rules: Rules): string {
  if ("all" in rules) return rules.all.map(describeRules).join(", and ");
  if ("any" in rules) return `One of: ${rules.any.map(describeRules).join("; or ")}`;
  return describeLeaf(rules);
}

const isExternal = (leaf: LeafRule): leaf is ExternalLeaf => leaf.type !== "open" && leaf.type !== "allowlist";

/** An eligibility checker over a holdings source (on-chain by default, Airstack if configured). */
export function createEligibilityChecker(source: HoldingsSource): EligibilityChecker {
  return {
    async check(rules, address) {
      const external = leaves(rules).filter(isExternal);
      const answers = external.length > 0 ? await source.check(external, address) : [];
      const passed = new Map<LeafRule, boolean>(external.map((leaf, i) => [leaf, answers[i] === true]));
      const result = decide(rules, address, passed);
      return result.ok ? { eligible: true } : { eligible: false, reason: result.reason };
    },
  };
}

function decide(rules: Rules, address: Address, passed: ReadonlyMap<LeafRule, boolean>): { ok: true } | { ok: false; reason: string } {
  if ("all" in rules) {
    for (const child of rules.all) {
      const r = decide(child, address, passed);
      if (!r.ok) return r;
    }
    return { ok: true };
  }
  if ("any" in rules) {
    const results = rules.any.map((child) => decide(child, address, passed));
    if (results.some((r) => r.ok)) return { ok: true };
    return { ok: false, reason: `${describeRules(rules)}` };
  }
  switch (rules.type) {
    case "open":
      return { ok: true };
    case "allowlist":
      return rules.addresses.includes(address) ? { ok: true } : { ok: false, reason: "This wallet is not on the group's allowlist" };
    default:
      return passed.get(rules) ? { ok: true } : { ok: false, reason: describeLeaf(rules) };
  }
}
