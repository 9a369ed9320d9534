import type { Address } from "../xmtp/port.js";
import type { Rules } from "./rules.js";

/** The outcome of checking a wallet against a group's rules. */
export type Eligibility = { readonly eligible: true } | { readonly eligible: false; readonly reason: string };

/** Decides whether `address` may join under `rules`. The only place that decides eligibility. */
export interface EligibilityChecker {
  check(rules: Rules, address: Address): Promise<Eligibility>;
}

/** An eligibility checker for the rules that need no outside data. */
export function createEligibilityChecker(): EligibilityChecker {
  return {
    check(rules, address) {
      switch (rules.type) {
        case "open":
          return Promise.resolve({ eligible: true });
        case "allowlist":
          return Promise.resolve(
            rules.addresses.includes(address)
              ? { eligible: true }
              : { eligible: false, reason: "This wallet is not on the group's allowlist" },
          );
      }
    },
  };
}
