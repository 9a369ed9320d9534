import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, generateInboxId } from "@xmtp/node-sdk";
import { createClient as bindingCreateClient } from "@xmtp/node-bindings";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { decideJoin } from "../../lib/use-cases/decide-join.js";
import { addMembers, showGroup, updateGroup } from "../../lib/use-cases/operator.js";
import { NotFoundError } from "../../lib/shared/errors.js";
import { createRedis } from "../../lib/shared/redis.js";
import { bindingClientOf, sdkSession } from "../../lib/xmtp/node-sdk-adapter.js";
import { createDurableDatabase } from "../../lib/xmtp/state/durable-database.js";
import { waitForClosedDatabase } from "../../lib/xmtp/state/local-files.js";
import { XmtpGroupNotFoundError, XmtpOperationError, XmtpUnavailableError } from "../../lib/xmtp/port.js";
import { createWalletSigner, ETHEREUM_IDENTIFIER } from "../../lib/xmtp/signer.js";
import { realDeployment, startRealInstance, type RealXmtpInstance } from "../support/test-app.js";
import { clearFaults, createPerson, injectFaults, nodeGroupStats, type Person } from "../support/xmtp-people.js";

describe("@xmtp/node-sdk and its native binding", () => {
  it("runs under Node 22 or newer", () => {
    expect(Number(process.versions.node.split(".")[0])).toBeGreaterThanOrEqual(22);
  });

  it("loads the native binding and derives an inbox id offline", () => {
    const id = generateInboxId({ identifier: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", identifierKind: ETHEREUM_IDENTIFIER });
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(generateInboxId({ identifier: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", identifierKind: ETHEREUM_IDENTIFIER })).toBe(id);
  });

  it("classifies the real client's failure to reach the network as XmtpUnavailableError, in bounded time", async () => {
    // The local node answers UNAVAILABLE to this deployment's client, as a network that cannot be reached does.
    const deployment = realDeployment();
    const instance = await startRealInstance(deployment);
    try {
      await injectFaults(deployment.appVersion, [
        { method: "GetInboxIds", when: "before", count: 100 },
        { method: "GetIdentityUpdates", when: "before", count: 100 },
      ]);
      const started = Date.now();
      const error: unknown = await instance.app.xmtp.withSession(async () => "unreachable").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(XmtpUnavailableError);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await clearFaults(deployment.appVersion);
      await instance.close();
    }
  }, 30_000);

  it("persists libxmtp's real SQLCipher database with its salt; a fresh instance opens the restored copy", async () => {
    // The binding's own createClient creates and migrates the encrypted database. Each "instance" has its own directory.
    const prefix = `xdb${Math.random().toString(36).slice(2)}`;
    const redis = createRedis(inject("upstash"), { plainResponses: true });
    const identifier = { identifier: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", identifierKind: ETHEREUM_IDENTIFIER };
    const open = (dbPath: string, key: Buffer) =>
      bindingCreateClient("http://localhost:5556", null, false, dbPath, generateInboxId(identifier), identifier, key, null, null, null, true, "test/1").then(
        async (client) => {
          client.releaseDbConnection();
          await waitForClosedDatabase(dbPath, 2000);
          return "opened";
        },
        (error: Error) => error.message,
      );
    const key = Buffer.alloc(32, 7);
    const dirs = [await mkdtemp(join(tmpdir(), "xmtp-a-")), await mkdtemp(join(tmpdir(), "xmtp-b-")), await mkdtemp(join(tmpdir(), "xmtp-c-"))];
    const noHandle = { release: async () => {}, discard: async () => {} };
    try {
      const instances = dirs.map((dir) => createDurableDatabase({ redis, keyPrefix: prefix, dbPath: join(dir, "x.db3") }));
      const first = await instances[0]!.run(noHandle, () => open(join(dirs[0]!, "x.db3"), key));
      expect(first).toBe("opened");
      const manifest = await instances[0]!.store.readManifest();
      expect(manifest?.files.map((f) => f.suffix).sort()).toEqual(["", ".sqlcipher_salt"]);

      // Restored from Redis, the database opens with its key…
      const second = await instances[1]!.run(noHandle, () => open(join(dirs[1]!, "x.db3"), key));
      expect(second).toBe("opened");
      // …and with another key the same restored files do not: the check above can tell the two apart.
      const wrongKey = await instances[2]!.run(noHandle, () => open(join(dirs[2]!, "x.db3"), Buffer.alloc(32, 8)));
      expect(wrongKey).not.toBe("opened");
    } finally {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("the node-sdk adapter against the local XMTP node", () => {
  const opened: { close(): Promise<void> }[] = [];
  const track = <T extends { close(): Promise<void> }>(x: T): T => (opened.push(x), x);
  const person = async (): Promise<Person> => track(await createPerson());
  afterAll(async () => {
    for (const x of opened) await x.close();
  });

  it("answers 503 (unavailable) when a commit cannot be published, and the retry succeeds without a second commit", async () => {
    const deployment = realDeployment();
    const app = track(await startRealInstance(deployment)).app;
    const dana = await person();
    const { groupId } = await createGroup(app, { name: "Retry", description: "", rules: { type: "open" } });
    // The node refuses the add's commit: libxmtp answers "Sync failed to wait for intent", which names no transport.
    await injectFaults(deployment.appVersion, [{ method: "SendGroupMessages", commitsOnly: true, when: "before", count: 50 }]);
    const error = await addMembers(app, groupId, [dana.address]).catch((e: unknown) => e);
    await clearFaults(deployment.appVersion);
    expect(error).toBeInstanceOf(XmtpUnavailableError);
    expect(await dana.group(groupId)).toBeNull();
    const commits = (await nodeGroupStats(groupId)).commits;
    expect((await addMembers(app, groupId, [dana.address])).results).toEqual([{ address: dana.address, result: "added" }]);
    expect(await dana.group(groupId)).not.toBeNull();
    expect((await nodeGroupStats(groupId)).commits).toBe(commits + 1);
  }, 60_000);

  it("tells a person SUCCESS when the commit reached the node but its answer was lost (libxmtp finds its own commit)", async () => {
    const deployment = realDeployment();
    const app = track(await startRealInstance(deployment)).app;
    const erin = await person();
    const { groupId } = await createGroup(app, { name: "Lost answer", description: "", rules: { type: "open" } });
    await injectFaults(deployment.appVersion, [{ method: "SendGroupMessages", commitsOnly: true, when: "after" }]);
    expect(await decideJoin(app, { groupId, address: erin.address }, "webhook")).toEqual({ status: "SUCCESS" });
    expect(await erin.group(groupId)).not.toBeNull();
  }, 60_000);

  it("creates a group once: a publish that failed is finished by the retry with the same Idempotency-Key", async () => {
    const deployment = realDeployment();
    const instance = await startRealInstance(deployment);
    const app = instance.app;
    const fay = await person();
    const input = { name: "Once", description: "", rules: { type: "open" as const } };
    await injectFaults(deployment.appVersion, [{ method: "SendGroupMessages", commitsOnly: true, when: "before", count: 50 }]);
    const failed = await createGroup(app, input, "create-once-1").catch((e: unknown) => e);
    await clearFaults(deployment.appVersion);
    expect(failed).toBeInstanceOf(XmtpUnavailableError);
    const retried = await createGroup(app, input, "create-once-1");
    expect(await app.registry.list({ offset: 0, limit: 10 })).toMatchObject({ total: 1, groupIds: [retried.groupId] });
    expect((await app.registry.get(retried.groupId))?.state).toBe("active");
    // The group is on the network: a person can be added and sees it.
    expect((await addMembers(app, retried.groupId, [fay.address])).results[0]?.result).toBe("added");
    expect((await fay.group(retried.groupId))?.name).toBe("Once");
    // The backend's own database holds that one group, not a second one left over from the failed attempt.
    await instance.xmtp.close();
    const raw = await Client.create(createWalletSigner(deployment.env.XMTP_WALLET_KEY as `0x${string}`).signer, {
      env: "local",
      dbPath: instance.xmtp.dbPath,
      dbEncryptionKey: `0x${deployment.env.XMTP_DB_ENCRYPTION_KEY}`,
      disableDeviceSync: true,
    });
    expect(raw.conversations.listGroups().map((g) => g.id)).toEqual([retried.groupId]);
    bindingClientOf(raw).releaseDbConnection();
    await rm(instance.dir, { recursive: true, force: true });
  }, 60_000);

  it("limits names and descriptions in UTF-8 bytes, as libxmtp does", async () => {
    const deployment = realDeployment();
    const app = track(await startRealInstance(deployment)).app;
    const gus = await person();
    const name = "€".repeat(33); // 99 bytes: fits
    const { groupId } = await createGroup(app, { name, description: "d", rules: { type: "open" } });
    await addMembers(app, groupId, [gus.address]);
    expect((await gus.group(groupId))?.name).toBe(name);
    // What the schema stops: libxmtp itself refuses 102 bytes though it is only 34 characters.
    const refused = await app.xmtp.withSession((s) => s.updateGroup(groupId, { name: "€".repeat(34) })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(XmtpOperationError);
    expect(String((refused as Error).cause)).toMatch(/Exceeded max characters/);
    await updateGroup(app, groupId, { name: "€".repeat(32) + "ab" });
    expect((await gus.group(groupId))?.name).toBe("€".repeat(32) + "ab");
  }, 60_000);

  it("treats a group the backend was removed from as not found (and DENIES a join to it)", async () => {
    const deployment = realDeployment();
    const instance = track(await startRealInstance(deployment));
    const owner = await person();
    const hal = await person();
    // The backend's inbox exists once it has run a session.
    const backendInbox = await instance.app.xmtp.withSession(async (s) => s.inboxId);
    const group = await owner.client.conversations.createGroup([backendInbox]);
    // The backend knows the group, then is removed from it.
    expect(await instance.app.xmtp.withSession((s) => s.getGroup(group.id))).toMatchObject({ groupId: group.id });
    await group.removeMembers([backendInbox]);
    expect(await instance.app.xmtp.withSession((s) => s.getGroup(group.id))).toBeNull();
    await expect(instance.app.xmtp.withSession((s) => s.listMembers(group.id))).rejects.toBeInstanceOf(XmtpGroupNotFoundError);
    await instance.app.registry.insertPending({ groupId: group.id, name: "Gone", description: "", rules: { type: "open" } });
    await instance.app.registry.activate(group.id, null);
    expect(await decideJoin(instance.app, { groupId: group.id, address: hal.address }, "join-page")).toEqual({ status: "DENIED", reason: "This group link is not active" });
    // The operator is told so (404), not given a 500.
    await expect(showGroup(instance.app, group.id)).rejects.toThrow(/not on XMTP for this backend/);
    await expect(showGroup(instance.app, group.id)).rejects.toBeInstanceOf(NotFoundError);
  }, 60_000);

  it("does not turn a database failure into 'group not found'", async () => {
    const ivy = await person();
    const group = await ivy.client.conversations.createGroup([]);
    const binding = bindingClientOf(ivy.client);
    const session = sdkSession(ivy.client, binding);
    expect((await session.listMembers(group.id)).map((m) => m.inboxId)).toEqual([ivy.inboxId]);
    binding.releaseDbConnection();
    try {
      const error = await session.listMembers(group.id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(XmtpOperationError);
      expect(error).not.toBeInstanceOf(XmtpGroupNotFoundError);
    } finally {
      await binding.dbReconnect();
    }
  });

  it("leaves no client holding the database when registering the identity fails, and registers one installation on retry", async () => {
    const deployment = realDeployment();
    const instance: RealXmtpInstance = track(await startRealInstance(deployment));
    // libxmtp retries a failed publish by itself: the node refuses all of its attempts.
    await injectFaults(deployment.appVersion, [{ method: "PublishIdentityUpdate", when: "before", count: 50 }]);
    const error = await instance.app.xmtp.withSession(async (s) => s.inboxId).catch((e: unknown) => e);
    await clearFaults(deployment.appVersion);
    expect(error).toBeInstanceOf(XmtpUnavailableError);
    // The database created for that client was released: SQLite removed its -wal and -shm.
    expect((await readdir(instance.dir)).filter((f) => f.endsWith("-wal") || f.endsWith("-shm"))).toEqual([]);
    const inboxId = await instance.app.xmtp.withSession(async (s) => s.inboxId);
    const [state] = await Client.fetchInboxStates([inboxId], "local");
    expect(state?.installations).toHaveLength(1);
  }, 60_000);
});
