import * as v from "valibot";
import { AddressSchema } from "../address.js";
import type { Address } from "../xmtp/port.js";

/** Anyone may join. */
export interface OpenRule {
  readonly type: "open";
}

/** Only the listed wallets may join. */
export interface AllowlistRule {
  readonly type: "allowlist";
  readonly addresses: readonly Address[];
}

/** A group's gating rules, stored with the group and evaluated on every join. */
export type Rules = OpenRule | AllowlistRule;

/** Most addresses an allowlist may hold (keeps one group record well under Redis's value limits). */
export const MAX_ALLOWLIST = 5000;

/** Validates rules as an operator sends them. Unknown keys are rejected. */
export const RulesSchema = v.variant(
  "type",
  [
    v.strictObject({ type: v.literal("open") }),
    v.strictObject({
      type: v.literal("allowlist"),
      addresses: v.pipe(
        v.array(AddressSchema, "must be an array of addresses"),
        v.minLength(1, "must list at least one address"),
        v.maxLength(MAX_ALLOWLIST, `must list at most ${MAX_ALLOWLIST} addresses`),
        v.transform((list) => [...new Set(list)]),
      ),
    }),
  ],
  'must be {"type":"open"} or {"type":"allowlist","addresses":[…]}',
);

/** The rules of a group created without any. */
export const OPEN_RULES: Rules = { type: "open" };
