import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as v from "valibot";
import { encodeAbiParameters, keccak256, toHex, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createEligibilityChecker } from "../../lib/eligibility/evaluate.js";
import { COINBASE_ATTESTER, COINBASE_INDEXER, COINBASE_SCHEMAS, createOnchainSource, EAS_CONTRACT } from "../../lib/eligibility/onchain.js";
import { contractWalletChains } from "../../lib/eligibility/contract-wallet-chains.js";
import { RulesSchema, type Rules } from "../../lib/shared/rules.js";
import type { Address } from "../../lib/shared/address.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";

// Coinbase Verifications (EAS on Base) on an anvil with Base's chain id, the indexer and EAS being contracts of our
// own at the real addresses.
let chain: LocalChain;
beforeAll(async () => {
  chain = await startLocalChain(8453);
  await chain.placeAt(COINBASE_INDEXER, "TestCoinbaseIndexer");
  await chain.placeAt(EAS_CONTRACT, "TestEAS");
}, 60_000);
afterAll(() => chain?.stop());

const wallet = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as Address;
const source = () => createOnchainSource({ rpcUrls: new Map([[8453, chain.url]]) });
const check = async (rules: Rules, wallets: readonly Address[]) => createEligibilityChecker(source()).check(await source().prepare(rules), wallets);
const now = () => BigInt(Math.floor(Date.now() / 1000));
const BEEF: Address = "0x000000000000000000000000000000000000beef";
const ACCOUNT: Rules = { type: "coinbaseVerified", attestation: "account" };
const COUNTRY: Rules = { type: "coinbaseVerified", attestation: "country", countries: ["US", "GB"] };

/** Attests `recipient` as the indexer and EAS would hold it; `over` changes any field. */
async function attest(recipient: Address, kind: "account" | "country", over: { attester?: Address; revocationTime?: bigint; expirationTime?: bigint; country?: string; schema?: Hex; recipient?: Address } = {}) {
  const uid = keccak256(toHex(`${recipient}:${kind}:${Math.random()}`));
  const schema = COINBASE_SCHEMAS[kind];
  const data = kind === "account" ? encodeAbiParameters([{ type: "bool" }], [true]) : encodeAbiParameters([{ type: "string" }], [over.country ?? "US"]);
  await chain.write(EAS_CONTRACT, "TestEAS", "put", [
    {
      uid,
      schema: over.schema ?? schema,
      time: now(),
      expirationTime: over.expirationTime ?? 0n,
      revocationTime: over.revocationTime ?? 0n,
      refUID: `0x${"00".repeat(32)}`,
      recipient: over.recipient ?? recipient,
      attester: over.attester ?? COINBASE_ATTESTER,
      revocable: true,
      data,
    },
  ]);
  await chain.write(COINBASE_INDEXER, "TestCoinbaseIndexer", "setAttestationUid", [recipient, schema, uid]);
}

describe("Coinbase Verifications (EAS on Base)", () => {
  it("a valid account attestation passes; without one the reason says what it takes", async () => {
    const [verified, nobody] = [wallet(), wallet()];
    await attest(verified, "account");
    expect(await check(ACCOUNT, [verified])).toEqual({ eligible: true });
    expect(await check(ACCOUNT, [nobody])).toEqual({ eligible: false, reason: "Have a Coinbase-verified account (Coinbase Verifications on Base)" });
  });

  it("any of the person's linked wallets may carry it", async () => {
    const [joining, linked] = [wallet(), wallet()];
    await attest(linked, "account");
    expect(await check(ACCOUNT, [joining, linked])).toEqual({ eligible: true });
  });

  it.each([
    ["revoked (EAS's isAttestationValid would still say yes)", { revocationTime: 1n }],
    ["expired", { expirationTime: 1n }],
    ["from another attester", { attester: BEEF }],
    ["for another recipient", { recipient: BEEF }],
    ["of another schema", { schema: COINBASE_SCHEMAS.country }],
  ])("an attestation %s does not count", async (_label, over) => {
    const w = wallet();
    await attest(w, "account", over);
    expect((await check(ACCOUNT, [w])).eligible).toBe(false);
  });

  it("an attestation not yet expired counts", async () => {
    const w = wallet();
    await attest(w, "account", { expirationTime: now() + 3600n });
    expect(await check(ACCOUNT, [w])).toEqual({ eligible: true });
  });

  it("a country attestation passes for a listed country only", async () => {
    const [gb, fr] = [wallet(), wallet()];
    await attest(gb, "country", { country: "GB" });
    await attest(fr, "country", { country: "FR" });
    expect(await check(COUNTRY, [gb])).toEqual({ eligible: true });
    expect(await check(COUNTRY, [fr])).toEqual({ eligible: false, reason: "Be verified by Coinbase as living in US, GB (Coinbase Verifications on Base)" });
  });

  it("validates the rule: countries only with a country attestation, as ISO codes; Base is the chain a contract wallet signs on", () => {
    expect(v.safeParse(RulesSchema, { type: "coinbaseVerified", attestation: "country", countries: ["us"] }).output).toEqual({ type: "coinbaseVerified", attestation: "country", countries: ["US"] });
    expect(v.safeParse(RulesSchema, { type: "coinbaseVerified", attestation: "country" }).success).toBe(false);
    expect(v.safeParse(RulesSchema, { type: "coinbaseVerified", attestation: "account", countries: ["US"] }).success).toBe(false);
    expect(v.safeParse(RulesSchema, { type: "coinbaseVerified", attestation: "country", countries: ["USA"] }).success).toBe(false);
    expect(contractWalletChains(ACCOUNT, new Map())).toEqual(new Set([8453]));
  });

  it("create refuses it without RPC_URL_8453, and where the indexer is missing", async () => {
    await expect(createOnchainSource({ rpcUrls: new Map() }).prepare(ACCOUNT)).rejects.toThrow(/RPC_URL_8453/);
    const bare = await startLocalChain(8453);
    try {
      await expect(createOnchainSource({ rpcUrls: new Map([[8453, bare.url]]) }).prepare(ACCOUNT)).rejects.toThrow(/is not a contract on/);
    } finally {
      await bare.stop();
    }
  });
});
