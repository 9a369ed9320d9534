import { Group } from "@xmtp/node-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey } from "viem/accounts";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { reverifyMembers } from "../../lib/use-cases/reverify.js";
import { createWalletSigner, ETHEREUM_IDENTIFIER } from "../../lib/xmtp/signer.js";
import type { Address } from "../../lib/shared/address.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { PROTOCOLS, realDeployment, startRealInstance, type RealXmtpInstance } from "../support/test-app.js";
import { createPerson, type Person } from "../support/xmtp-people.js";

// Every wallet linked to a person's XMTP inbox counts: real people on the local node (each in the protocol under
// test) link a second wallet with their own client, and the tokens sit on that second wallet (anvil).
let chain: LocalChain;
let usdc: Address;
let rival: Address;
beforeAll(async () => {
  chain = await startLocalChain(100);
  usdc = (await chain.deploy("TestERC20", ["USD Coin", "USDC", 6])).toLowerCase() as Address;
  rival = (await chain.deploy("TestERC721", ["Rival Dogs"])).toLowerCase() as Address;
}, 60_000);
afterAll(() => chain?.stop());

for (const protocol of PROTOCOLS) {
  describe(`linked wallets on ${protocol === "v3" ? "XMTP V3" : "the decentralized network (d14n)"}`, () => {
    let instance: RealXmtpInstance;
    const people: Person[] = [];
    /** A real person whose inbox also holds a second wallet (linked with node-sdk's unsafe_addAccount). */
    const personWithSecondWallet = async () => {
      const person = await createPerson({ protocol });
      people.push(person);
      const key = generatePrivateKey();
      const second = createWalletSigner(key);
      await person.client.unsafe_addAccount(second.signer, true);
      return { person, second: second.address };
    };

    beforeAll(async () => {
      instance = await startRealInstance(realDeployment({ RPC_URL_100: chain.url, ELIGIBILITY_CACHE_TTL_SECONDS: "60" }, protocol));
    }, 60_000);
    afterAll(async () => {
      await instance?.close();
      for (const p of people) await p.close();
    });

    it("the port lists every wallet of an inbox without a session, and forgets one the person unlinked", async () => {
      const { person, second } = await personWithSecondWallet();
      expect((await instance.app.xmtp.inboxAddresses(person.inboxId)).sort()).toEqual([person.address, second].sort());
      await person.client.removeAccount({ identifier: second, identifierKind: ETHEREUM_IDENTIFIER });
      expect(await instance.app.xmtp.inboxAddresses(person.inboxId)).toEqual([person.address]);
      expect(await instance.app.xmtp.inboxAddresses("ab".repeat(32))).toEqual([]);
    });

    it("joins with the tokens on the second wallet; the person's own client sees the group", async () => {
      const { person, second } = await personWithSecondWallet();
      const { groupId } = await createGroup(instance.app, { name: "Holders", description: "", rules: { type: "erc20", chainId: 100, token: usdc, minBalance: "100" } });
      // Nothing anywhere yet: the reason names the wallets counted.
      expect(await decideJoin(instance.app, { groupId, address: person.address }, "join-page")).toEqual({
        status: "DENIED",
        reason: "Hold at least 100 USDC on Gnosis (counted across your 2 wallets)",
      });
      await chain.write(usdc, "TestERC20", "mint", [second, 100_000_000n]);
      // A new balance is cached for the TTL; a newly linked wallet is not (another set of wallets): link a third.
      const third = createWalletSigner(generatePrivateKey());
      await person.client.unsafe_addAccount(third.signer, true);
      expect(await decideJoin(instance.app, { groupId, address: person.address }, "join-page")).toEqual({ status: "SUCCESS" });
      expect(await person.group(groupId)).toBeInstanceOf(Group);
    });

    it("a `not` rule turns the person away when the rival token sits on their second wallet, and the cron warns them by direct message (the grace period keeps them in)", async () => {
      const { person, second } = await personWithSecondWallet();
      await chain.write(usdc, "TestERC20", "mint", [person.address, 1_000_000n]);
      const { groupId } = await createGroup(instance.app, {
        name: "No rivals",
        description: "",
        rules: { all: [{ type: "erc20", chainId: 100, token: usdc, minBalance: "1" }, { not: { type: "erc721", chainId: 100, contract: rival, minCount: 1 } }] },
      });
      expect(await decideJoin(instance.app, { groupId, address: person.address }, "webhook")).toEqual({ status: "SUCCESS" });
      await chain.write(rival, "TestERC721", "mint", [second, BigInt(Date.now())]);
      const other = await personWithSecondWallet();
      await chain.write(usdc, "TestERC20", "mint", [other.person.address, 1_000_000n]);
      await chain.write(rival, "TestERC721", "mint", [other.second, BigInt(Date.now()) + 1n]);
      expect(await decideJoin(instance.app, { groupId, address: other.person.address }, "webhook")).toEqual({
        status: "DENIED",
        reason: "Do not hold at least 1 Rival Dogs NFT on Gnosis (counted across your 2 wallets)",
      });
      const reason = "Do not hold at least 1 Rival Dogs NFT on Gnosis (counted across your 2 wallets)";
      const report = await reverifyMembers(instance.app, { dryRun: true });
      expect(report.warned).toContainEqual(expect.objectContaining({ groupId, address: person.address, reason }));
      // For real: the warning reaches the person's own client as a direct message from the backend; they stay in.
      const run = await reverifyMembers(instance.app, { dryRun: false });
      expect(run.warned).toContainEqual(expect.objectContaining({ groupId, address: person.address, reason }));
      expect(run.removed).toEqual([]);
      await person.client.conversations.sync();
      const dms = person.client.conversations.listDms();
      const texts = (await Promise.all(dms.map(async (dm) => (await dm.sync(), await dm.messages())))).flat().map((m) => m.content);
      expect(texts).toContainEqual(expect.stringContaining(`You no longer meet the requirements of "No rivals": ${reason}.`));
      expect(await person.memberInboxIds(groupId)).toContain(person.inboxId);
    });
  });
}
