import * as v from "valibot";
import { AddressSchema, type Address } from "./address.js";
import { InvalidRequestError } from "./errors.js";

/** Anyone may join. */
export interface OpenRule {
  readonly type: "open";
}
/** Only the listed wallets may join. */
export interface AllowlistRule {
  readonly type: "allowlist";
  readonly addresses: readonly Address[];
}
/** Hold at least `minBalance` whole tokens (decimal string) of an ERC-20. `symbol`/`decimals` are read on chain at create. */
export interface Erc20Rule {
  readonly type: "erc20";
  readonly chainId: number;
  readonly token: Address;
  readonly minBalance: string;
  readonly symbol?: string;
  readonly decimals?: number;
}
/** An inclusive range of token ids (decimal strings), at most {@link MAX_TOKEN_ID_RANGE} ids. */
export interface TokenIdRange {
  readonly from: string;
  readonly to: string;
}
/**
 * Hold `minCount` NFTs of a collection, or the one with `tokenId`, or `minCount` of those whose ids are in
 * `tokenIds`. `name` is read on chain at create.
 */
export interface Erc721Rule {
  readonly type: "erc721";
  readonly chainId: number;
  readonly contract: Address;
  readonly minCount: number;
  readonly tokenId?: string;
  readonly tokenIds?: TokenIdRange;
  readonly name?: string;
}
/** Hold at least `minBalance` of token `tokenId` of an ERC-1155 contract, or of the tokens in `tokenIds` together (exactly one of the two). */
export interface Erc1155Rule {
  readonly type: "erc1155";
  readonly chainId: number;
  readonly contract: Address;
  readonly tokenId?: string;
  readonly tokenIds?: TokenIdRange;
  readonly minBalance: string;
}
/** Hold a POAP of the event (the POAP contract on Gnosis, or `chainId` 1 for Ethereum). */
export interface PoapRule {
  readonly type: "poap";
  readonly eventId: number;
  readonly chainId?: number;
}
/**
 * Verified by Coinbase (Coinbase Verifications, EAS attestations on Base): a verified Coinbase account, or a verified
 * country of residence among `countries` (ISO 3166-1 alpha-2).
 */
export interface CoinbaseVerifiedRule {
  readonly type: "coinbaseVerified";
  readonly attestation: "account" | "country";
  readonly countries?: readonly string[];
}
/** Every sub-rule must pass. */
export interface AllRule {
  readonly all: readonly Rules[];
}
/** At least one sub-rule must pass. */
export interface AnyRule {
  readonly any: readonly Rules[];
}
/** At least `atLeast` of the sub-rules must pass (N of M; 1 ≤ N ≤ M). */
export interface AtLeastRule {
  readonly atLeast: number;
  readonly of: readonly Rules[];
}
/** Passes while the inner rule does not (e.g. holders of a rival token are turned away). */
export interface NotRule {
  readonly not: Rules;
}

/** A leaf rule: one check against one source. */
export type LeafRule = OpenRule | AllowlistRule | Erc20Rule | Erc721Rule | Erc1155Rule | PoapRule | CoinbaseVerifiedRule;
/** A rule made of others. */
export type CompoundRule = AllRule | AnyRule | AtLeastRule | NotRule;
/** A group's gating rules, stored with the group and evaluated on every join. */
export type Rules = LeafRule | CompoundRule;

/** Most addresses an allowlist may hold (keeps one group record well under Redis's value limits). */
/** Most wallets of one person counted in a decision (the joining wallet and up to 9 more linked to its inbox). */
export const MAX_WALLETS = 10;

export const MAX_ALLOWLIST = 5000;
/** Deepest nesting of all/any/atLeast/not, and most leaves in one rule tree. */
export const MAX_RULE_DEPTH = 4;
export const MAX_RULE_LEAVES = 32;
/**
 * Most token ids one `tokenIds` range may span: each id is one read (`ownerOf`, or one entry of `balanceOfBatch`
 * per wallet) in the decision's JSON-RPC batch.
 */
export const MAX_TOKEN_ID_RANGE = 500;
/** Base: where Coinbase Verifications are attested. */
export const BASE_CHAIN_ID = 8453;
/** Chains with the POAP contract. */
export const POAP_CHAINS = [100, 1] as const;

const uint = (what: string) =>
  v.pipe(v.string(`${what} must be a decimal string`), v.trim(), v.regex(/^\d{1,78}$/, `${what} must be a non-negative whole number written as a decimal string`));
const tokenIdRange = v.pipe(
  v.strictObject({ from: uint("tokenIds.from"), to: uint("tokenIds.to") }, "tokenIds must be {\"from\": \"…\", \"to\": \"…\"}"),
  v.check((r) => BigInt(r.from) <= BigInt(r.to), "tokenIds.from must not be above tokenIds.to"),
  v.check((r) => BigInt(r.to) - BigInt(r.from) < BigInt(MAX_TOKEN_ID_RANGE), `tokenIds must span at most ${MAX_TOKEN_ID_RANGE} ids`),
);
const chainId = v.pipe(v.number("chainId must be a number"), v.integer("chainId must be an integer"), v.minValue(1, "chainId must be positive"));

const LeafSchema = v.variant(
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
    v.strictObject({
      type: v.literal("erc20"),
      chainId,
      token: AddressSchema,
      minBalance: v.pipe(
        v.string("minBalance must be a decimal string"),
        v.trim(),
        v.regex(/^\d{1,40}(\.\d{1,36})?$/, "minBalance must be a non-negative decimal string, e.g. \"100\" or \"0.5\""),
      ),
      symbol: v.optional(v.string()),
      decimals: v.optional(v.number()),
    }),
    v.pipe(
      v.strictObject({
        type: v.literal("erc721"),
        chainId,
        contract: AddressSchema,
        minCount: v.optional(v.pipe(v.number("minCount must be a number"), v.integer("minCount must be an integer"), v.minValue(1, "minCount must be at least 1"), v.maxValue(1_000_000)), 1),
        tokenId: v.optional(uint("tokenId")),
        tokenIds: v.optional(tokenIdRange),
        name: v.optional(v.string()),
      }),
      v.check((r) => r.tokenId === undefined || r.tokenIds === undefined, "give tokenId or tokenIds, not both"),
    ),
    v.pipe(
      v.strictObject({
        type: v.literal("erc1155"),
        chainId,
        contract: AddressSchema,
        tokenId: v.optional(uint("tokenId")),
        tokenIds: v.optional(tokenIdRange),
        minBalance: v.optional(uint("minBalance"), "1"),
      }),
      v.check((r) => (r.tokenId === undefined) !== (r.tokenIds === undefined), "an erc1155 rule needs tokenId or tokenIds (one of them)"),
    ),
    v.strictObject({
      type: v.literal("poap"),
      eventId: v.pipe(v.number("eventId must be a number"), v.integer("eventId must be an integer"), v.minValue(1, "eventId must be positive")),
      chainId: v.optional(v.picklist(POAP_CHAINS, "POAP chainId must be 100 (Gnosis) or 1 (Ethereum)")),
    }),
    v.pipe(
      v.strictObject({
        type: v.literal("coinbaseVerified"),
        attestation: v.picklist(["account", "country"], "attestation must be account or country"),
        countries: v.optional(
          v.pipe(
            v.array(v.pipe(v.string("countries must be ISO 3166-1 alpha-2 codes"), v.trim(), v.toUpperCase(), v.regex(/^[A-Z]{2}$/, "countries must be ISO 3166-1 alpha-2 codes, e.g. \"US\""))),
            v.minLength(1, "countries must list at least one country"),
            v.maxLength(250, "countries must list at most 250 countries"),
            v.transform((list) => [...new Set(list)]),
          ),
        ),
      }),
      v.check((r) => (r.attestation === "country") === (r.countries !== undefined), "a country attestation needs countries, an account attestation takes none"),
    ),
  ],
  "must be a rule: type open, allowlist, erc20, erc721, erc1155, poap or coinbaseVerified, or {\"all\":[…]} / {\"any\":[…]} / {\"atLeast\":N,\"of\":[…]} / {\"not\":…}",
);

// Dispatch on the shape so a problem deep inside a tree is reported with its own message and path.
const hasKey = (input: unknown, key: string) => typeof input === "object" && input !== null && key in input;
const RuleTreeSchema: v.GenericSchema<unknown, Rules> = v.lazy((input): v.GenericSchema<unknown, Rules> => {
  if (hasKey(input, "all")) {
    return v.strictObject({ all: v.pipe(v.array(RuleTreeSchema, "all must be an array of rules"), v.minLength(1, "all must list at least one rule")) });
  }
  if (hasKey(input, "any")) {
    return v.strictObject({ any: v.pipe(v.array(RuleTreeSchema, "any must be an array of rules"), v.minLength(1, "any must list at least one rule")) });
  }
  if (hasKey(input, "atLeast") || hasKey(input, "of")) {
    return v.pipe(
      v.strictObject({
        atLeast: v.pipe(v.number("atLeast must be a number"), v.integer("atLeast must be a whole number"), v.minValue(1, "atLeast must be at least 1")),
        of: v.pipe(v.array(RuleTreeSchema, "of must be an array of rules"), v.minLength(1, "of must list at least one rule")),
      }),
      v.check((r) => r.atLeast <= r.of.length, "atLeast must not be more than the rules listed in of"),
    );
  }
  if (hasKey(input, "not")) return v.strictObject({ not: RuleTreeSchema });
  return LeafSchema as v.GenericSchema<unknown, LeafRule>;
});

/** The sub-rules of a compound rule, each with the key of its path (`all.0`, `of.2`, `not`); none for a leaf. */
export function children(rules: Rules): { rule: Rules; key: string }[] {
  if ("all" in rules) return rules.all.map((rule, i) => ({ rule, key: `all.${i}` }));
  if ("any" in rules) return rules.any.map((rule, i) => ({ rule, key: `any.${i}` }));
  if ("of" in rules) return rules.of.map((rule, i) => ({ rule, key: `of.${i}` }));
  if ("not" in rules) return [{ rule: rules.not, key: "not" }];
  return [];
}

/** Whether a rule is a leaf (one check against one source) rather than made of others. */
export const isLeaf = (rules: Rules): rules is LeafRule => "type" in rules;

/** Depth of all/any/atLeast/not nesting (a leaf is 0) and the number of leaves. */
export function ruleShape(rules: Rules): { depth: number; leaves: number } {
  if (isLeaf(rules)) return { depth: 0, leaves: 1 };
  const shapes = children(rules).map((c) => ruleShape(c.rule));
  return { depth: 1 + Math.max(...shapes.map((s) => s.depth)), leaves: shapes.reduce((n, s) => n + s.leaves, 0) };
}

/** Every leaf of a rule tree, in order, with its path in the request body (`rules.any.1`, as valibot names paths). */
export function leafPaths(rules: Rules, path = "rules"): { leaf: LeafRule; path: string }[] {
  if (isLeaf(rules)) return [{ leaf: rules, path }];
  return children(rules).flatMap((c) => leafPaths(c.rule, `${path}.${c.key}`));
}

/** The same tree with each leaf replaced by `map(leaf)`. */
export function mapLeaves(rules: Rules, map: (leaf: LeafRule) => LeafRule): Rules {
  if (isLeaf(rules)) return map(rules);
  if ("all" in rules) return { all: rules.all.map((r) => mapLeaves(r, map)) };
  if ("any" in rules) return { any: rules.any.map((r) => mapLeaves(r, map)) };
  if ("of" in rules) return { atLeast: rules.atLeast, of: rules.of.map((r) => mapLeaves(r, map)) };
  return { not: mapLeaves(rules.not, map) };
}

/** The largest uint256: no token id or balance on an EVM chain is above it. */
export const MAX_UINT256 = 2n ** 256n - 1n;
/** Most decimals a token can have: one whole token (10^decimals base units) must fit in a uint256, which has 78 digits. */
export const MAX_DECIMALS = 77;

/**
 * Refuses values no chain can hold, which would make a rule nobody meets or one that fails at every join:
 * a `tokenId` or an ERC-1155 `minBalance` above 2^256 - 1, `decimals` that are not a whole number from 0 to 77.
 * Run at create and PATCH (by the sources' `prepare`) rather than in {@link RulesSchema}, which also reads
 * stored groups: a group stored before these checks stays readable.
 * @throws {InvalidRequestError} naming each offending value with its path.
 */
export function checkRuleValues(rules: Rules): void {
  const issues: { path: string; message: string }[] = [];
  const uint256 = (value: string | undefined, path: string, what: string) => {
    if (value !== undefined && BigInt(value) > MAX_UINT256) issues.push({ path, message: `${what} must be at most 2^256 - 1 (a uint256)` });
  };
  for (const { leaf, path } of leafPaths(rules)) {
    if (leaf.type === "erc721" || leaf.type === "erc1155") {
      uint256(leaf.tokenId, `${path}.tokenId`, "tokenId");
      uint256(leaf.tokenIds?.to, `${path}.tokenIds.to`, "tokenIds.to");
    }
    if (leaf.type === "erc1155") {
      uint256(leaf.minBalance, `${path}.minBalance`, "minBalance");
    }
    if (leaf.type === "erc20" && leaf.decimals !== undefined && !(Number.isInteger(leaf.decimals) && leaf.decimals >= 0 && leaf.decimals <= MAX_DECIMALS)) {
      issues.push({ path: `${path}.decimals`, message: `decimals must be a whole number from 0 to ${MAX_DECIMALS}` });
    }
  }
  const first = issues[0];
  if (first) throw new InvalidRequestError(`Invalid request: ${first.path}: ${first.message}`, issues);
}

/** Every leaf of a rule tree, in order. */
export function leaves(rules: Rules): LeafRule[] {
  return isLeaf(rules) ? [rules] : children(rules).flatMap((c) => leaves(c.rule));
}

/** Validates rules as an operator sends them: known types, valid addresses and amounts, bounded nesting and size. */
export const RulesSchema = v.pipe(
  v.unknown(),
  // A depth guard before the recursive schema, so a hostile body cannot make validation recurse without end.
  v.check((raw) => jsonDepth(raw) <= 3 * (MAX_RULE_DEPTH + 2), `must nest all/any/atLeast/not at most ${MAX_RULE_DEPTH} deep`),
  RuleTreeSchema,
  v.check((rules) => ruleShape(rules).depth <= MAX_RULE_DEPTH, `must nest all/any/atLeast/not at most ${MAX_RULE_DEPTH} deep`),
  v.check((rules) => ruleShape(rules).leaves <= MAX_RULE_LEAVES, `must have at most ${MAX_RULE_LEAVES} rules in all`),
);

function jsonDepth(value: unknown, depth = 0): number {
  if (depth > 64 || value === null || typeof value !== "object") return depth;
  let max = depth;
  for (const child of Object.values(value)) max = Math.max(max, jsonDepth(child, depth + 1));
  return max;
}

/** The rules of a group created without any. */
export const OPEN_RULES: Rules = { type: "open" };
