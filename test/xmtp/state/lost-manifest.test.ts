import { Client } from "@xmtp/node-sdk";
import { afterAll, describe, expect, it } from "vitest";
import { errorResponse } from "../../../lib/http/responses.js";
import { DependencyUnavailableError } from "../../../lib/shared/errors.js";
import { silentLogger } from "../../../lib/shared/log.js";
import { realDeployment, startRealInstance, testRedis, type Deployment, type RealXmtpInstance } from "../../support/test-app.js";

// When Redis loses the stored database (eviction, a flush), a session must not quietly start a new installation:
// it would be in none of the groups, and the inbox would collect installations. Real client, local node, real Redis.
const redis = testRedis();
const opened: RealXmtpInstance[] = [];
afterAll(async () => {
  for (const instance of opened) await instance.close();
});
const start = async (deployment: Deployment) => {
  const instance = await startRealInstance(deployment);
  opened.push(instance);
  return instance;
};
const installations = async (inboxId: string) => (await Client.fetchInboxStates([inboxId], "local"))[0]?.installations.map((i) => i.id) ?? [];
const failure = (instance: RealXmtpInstance) => instance.app.xmtp.withSession(async (s) => s.installationId).then(() => null, (e: unknown) => e);

describe("a stored database that is gone", () => {
  it("manifest lost, installation record left: every instance refuses with a 503 naming npm run xmtp:recover, and no installation is added", async () => {
    const deployment = realDeployment();
    const warm = await start(deployment);
    const { inboxId, installationId } = await warm.app.xmtp.withSession(async (s) => ({ inboxId: s.inboxId, installationId: s.installationId }));
    expect(await installations(inboxId)).toEqual([installationId]);
    await redis.del(`${deployment.env.REDIS_KEY_PREFIX}:xmtpdb:manifest`);

    // A cold instance, and the warm one that still has a good copy on its disk.
    for (const instance of [await start(deployment), warm]) {
      const error = await failure(instance);
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect((error as Error).message).toMatch(/npm run xmtp:recover/);
      const response = errorResponse(error, "default", silentLogger);
      expect(response.status).toBe(503);
      expect(JSON.stringify(await response.json())).not.toMatch(/xmtp:recover|manifest/);
    }
    expect(await installations(inboxId)).toEqual([installationId]);
  }, 60_000);

  it("Redis flushed (no record either): refused while the network shows installations, until the explicit one-time step allows a new one", async () => {
    const deployment = realDeployment();
    const first = await start(deployment);
    const { inboxId, installationId } = await first.app.xmtp.withSession(async (s) => ({ inboxId: s.inboxId, installationId: s.installationId }));
    const prefix = deployment.env.REDIS_KEY_PREFIX!;
    await redis.del(...(await redis.keys(`${prefix}:*`)));

    const cold = await start(deployment);
    const error = await failure(cold);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    // Names both cases and the step that allows a new installation.
    expect((error as Error).message).toMatch(/flushed/);
    expect((error as Error).message).toMatch(/another XMTP app/);
    expect((error as Error).message).toMatch(/npm run xmtp:recover -- --allow-new-installation/);
    expect(await installations(inboxId)).toEqual([installationId]);

    // The operator's explicit step (what `npm run xmtp:recover -- --allow-new-installation` does), once.
    await cold.xmtp.durable.store.allowNewInstallation();
    const second = await cold.app.xmtp.withSession(async (s) => s.installationId);
    expect(second).not.toBe(installationId);
    expect((await installations(inboxId)).sort()).toEqual([installationId, second].sort());
    expect(await redis.get(cold.xmtp.durable.store.keys.allowNewInstallation)).toBeNull();
  }, 60_000);
});
