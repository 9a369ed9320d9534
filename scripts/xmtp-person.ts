import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Client, Group, type DecodedMessage } from "@xmtp/node-sdk";
import { generatePrivateKey } from "viem/accounts";
import { nodeHealth } from "../local/xmtp-node/launcher.js";
import { createWalletSigner } from "../lib/xmtp/signer.js";

// `npm run xmtp:person`: a throwaway person for the local XMTP node (what `npm run dev` runs against).
//   (no flags)        a new wallet, registered on the local node: prints its address and private key
//   --key 0x…         the same person again (their XMTP database is kept under .local-people/)
//   --listen          stay open and print every group this person is added to and every message in them
//   --send <groupId> <text>   send a message to a group as this person
// The key is a local test wallet: import it into a browser wallet to try a join page. Never fund it.
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { key: { type: "string" }, listen: { type: "boolean", default: false }, send: { type: "string" } },
});

if (!(await nodeHealth())) {
  console.error("No local XMTP node on localhost:5556: start `npm run dev` (or `npm run xmtp:node`) first.");
  process.exit(1);
}
const key = (values.key ?? generatePrivateKey()) as `0x${string}`;
if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
  console.error("--key must be 0x followed by 64 hex characters");
  process.exit(2);
}
const { signer, address } = createWalletSigner(key);
const dir = join(process.cwd(), ".local-people");
await mkdir(dir, { recursive: true });
const client: Client<unknown> = await Client.create(signer, {
  env: "local",
  dbPath: join(dir, `${address}.db3`),
  // A local test person's database needs no secrecy; a fixed key lets `--key` reopen it.
  dbEncryptionKey: new Uint8Array(32),
  disableDeviceSync: true,
  appVersion: "xmtp-person/1",
});
console.log(`address:     ${address}`);
console.log(`private key: ${key}   (a local test wallet)`);
console.log(`inbox id:    ${client.inboxId}`);

if (values.send) {
  await client.conversations.sync();
  const group = await client.conversations.getConversationById(values.send);
  if (!(group instanceof Group)) {
    console.error(`${address} is not in group ${values.send}`);
    process.exit(1);
  }
  await group.sync();
  console.log(`sent ${await group.sendText(positionals.join(" ") || "gm")}`);
}

if (values.listen) {
  const show = (m: DecodedMessage<unknown>) => {
    const text = typeof m.content === "string" ? m.content : `(${m.contentType?.typeId ?? "content"})`;
    console.log(`${m.sentAt.toISOString()} ${m.conversationId} ${m.senderInboxId.slice(0, 8)}… ${text}`);
  };
  await client.conversations.syncAll();
  for (const group of client.conversations.listGroups()) {
    console.log(`in group ${group.id}: ${group.name}`);
    for (const m of await group.messages()) show(m);
  }
  const stream = await client.conversations.streamAllMessages();
  console.log("listening (Ctrl-C to stop)…");
  for await (const message of stream) if (message) show(message);
}
process.exit(0);
