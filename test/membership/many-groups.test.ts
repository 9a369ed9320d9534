import { afterAll, describe, expect, it } from "vitest";
import { createGroup } from "../../lib/use-cases/create-group.js";
import { serveAdmissions } from "../../lib/membership/membership.js";
import { PROTOCOLS, realDeployment, startRealInstance } from "../support/test-app.js";
import { createPerson, nodeGroupStats, type Person } from "../support/xmtp-people.js";

// Many groups in one session, with the real client against the local node and real Redis: their commits go out
// side by side and share checkpoints (group commit), and everyone ends up in their own group, unforked.
const opened: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const x of opened) await x.close();
});

for (const protocol of PROTOCOLS) {
  describe(`admissions of many groups in one session (${protocol})`, () => {
    it("commits to different groups at once, fewer checkpoints than commits, everyone in, nobody forked", async () => {
      const deployment = realDeployment({}, protocol);
      let checkpoints = 0;
      let inFlight = 0;
      let mostInFlight = 0;
      const instance = await startRealInstance(deployment, {}, {
        onStep: (step, detail) => {
          if (step === "checkpointed") checkpoints++;
          if (step === "write-held" && detail?.includes("SendGroupMessages")) mostInFlight = Math.max(mostInFlight, ++inFlight);
          if (step === "write-answered" && detail?.includes("SendGroupMessages")) inFlight--;
        },
      });
      opened.push(instance);
      const { app } = instance;
      const groups: string[] = [];
      for (let i = 0; i < 6; i++) groups.push((await createGroup(app, { name: `Team ${i}`, description: "", rules: { type: "open" } })).groupId);
      const people: Person[] = await Promise.all(groups.map(async () => createPerson({ protocol })));
      opened.push(...people);
      for (const [i, groupId] of groups.entries()) {
        await app.admissions.enqueue(groupId, { address: people[i]!.address, inboxId: people[i]!.inboxId, source: "webhook" });
      }
      const commitsBefore = await Promise.all(groups.map(async (g) => (await nodeGroupStats(g)).commits));
      checkpoints = 0;
      await app.xmtp.withSession((session) => serveAdmissions(app, session));
      const commits = (await Promise.all(groups.map(async (g) => (await nodeGroupStats(g)).commits))).reduce((n, c, i) => n + c - commitsBefore[i]!, 0);
      expect(commits).toBe(groups.length);
      expect(mostInFlight).toBeGreaterThan(1);
      expect(checkpoints).toBeLessThan(commits);
      for (const [i, groupId] of groups.entries()) {
        expect(await app.admissions.outcome(groupId, people[i]!.address)).toBe("added");
        const own = await people[i]!.group(groupId);
        expect(own).not.toBeNull();
        expect((await own!.debugInfo()).maybeForked).toBe(false);
      }
      await app.xmtp.withSession(async (s) => {
        for (const groupId of groups) expect(await s.groupHealth(groupId)).toMatchObject({ maybeForked: false });
      });
    }, 120_000);
  });
}
