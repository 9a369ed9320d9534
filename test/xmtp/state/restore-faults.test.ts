import type * as FsPromises from "node:fs/promises";
import { afterAll, describe, expect, it, vi } from "vitest";
import { errorResponse } from "../../../lib/http/responses.js";
import { silentLogger } from "../../../lib/shared/log.js";
import { createGroup } from "../../../lib/use-cases/create-group.js";
import { decideJoin } from "../../../lib/use-cases/decide-join.js";
import { UnstableFilesError } from "../../../lib/xmtp/state/local-files.js";
import { realDeployment, startRealInstance, testRedis } from "../../support/test-app.js";
import { createPerson, type Person } from "../../support/xmtp-people.js";

// The file-system seam: writes of a restore fail as a full disk does, while `fsFault.code` is set (no root needed).
const fsFault = vi.hoisted(() => ({ code: null as string | null }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof FsPromises>();
  return {
    ...real,
    writeFile: async (...args: Parameters<typeof real.writeFile>) => {
      const path = typeof args[0] === "string" ? args[0] : "";
      if (fsFault.code && path.endsWith(".restoring")) {
        throw Object.assign(new Error(`${fsFault.code}: no space left on device, open '${path}'`), { code: fsFault.code, syscall: "open", path });
      }
      return real.writeFile(...args);
    },
  };
});

const opened: { close(): Promise<void> }[] = [];
const track = <T extends { close(): Promise<void> }>(x: T): T => (opened.push(x), x);
afterAll(async () => {
  for (const x of opened) await x.close();
});

/** A deployment with a group saved by one instance, and a second instance that starts cold (it must restore). */
async function savedGroupAndColdInstance() {
  const deployment = realDeployment();
  const first = track(await startRealInstance(deployment));
  const { groupId } = await createGroup(first.app, { name: "Saved", description: "", rules: { type: "open" } });
  const cold = track(await startRealInstance(deployment));
  const person: Person = track(await createPerson());
  return { first, cold, groupId, person };
}

describe("a restore that cannot complete", () => {
  it("answers 503 naming the recovery when a chunk of the saved version is missing, never a 500", async () => {
    const { first, cold, groupId, person } = await savedGroupAndColdInstance();
    const manifest = await first.xmtp.durable.store.readManifest();
    const chunk = manifest!.files.flatMap((f) => f.chunks)[0]!;
    await testRedis().del(first.xmtp.durable.store.keys.chunk(chunk));
    const error = await decideJoin(cold.app, { groupId, address: person.address }, "webhook").catch((e: unknown) => e);
    const response = errorResponse(error, "link-service", silentLogger);
    expect(response.status).toBe(503);
    expect((error as Error).message).toMatch(/chunk .* missing.*npm run xmtp:recover/);
    expect(await person.group(groupId)).toBeNull();
  }, 90_000);

  it("answers 503 when this instance's disk is full (ENOSPC), and the retry on a disk with room succeeds", async () => {
    const { cold, groupId, person } = await savedGroupAndColdInstance();
    fsFault.code = "ENOSPC";
    const error = await decideJoin(cold.app, { groupId, address: person.address }, "webhook").catch((e: unknown) => e);
    fsFault.code = null;
    expect(errorResponse(error, "link-service", silentLogger).status).toBe(503);
    expect((error as Error).name).toBe("LocalStorageError");
    expect(await decideJoin(cold.app, { groupId, address: person.address }, "webhook")).toEqual({ status: "SUCCESS" });
    expect(await person.group(groupId)).not.toBeNull();
  }, 90_000);

  it("answers 503 when the files would not hold still to be saved (UnstableFilesError)", () => {
    expect(errorResponse(new UnstableFilesError("XMTP database files kept changing while being saved"), "default", silentLogger).status).toBe(503);
  });
});
