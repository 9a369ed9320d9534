import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGroup } from "../../../lib/use-cases/create-group.js";
import { decideJoin } from "../../../lib/use-cases/decide-join.js";
import { addMembers, removeMembers, sendMessage } from "../../../lib/use-cases/operator.js";
import type { XmtpProtocol } from "../../../lib/config.js";
import { PROTOCOLS, realDeployment, startRealInstance, type Deployment, type RealXmtpInstance } from "../../support/test-app.js";
import type { CrashOp, CrashPlan, CrashWorkerArgs } from "../../support/xmtp-crash-worker.js";
import { createPerson, type Person } from "../../support/xmtp-people.js";

// The promise: after a crash or a Redis cut at any point of a session, nobody is told SUCCESS who is not in the
// group as its members see it, the backend keeps reading and writing the group (no fork), and nothing
// acknowledged is lost. Instances that crash are separate processes running the real client; the instance that
// carries on runs here; members are real clients with their own wallets.
const LEASE_TTL_MS = 700;
const WORKER = join(import.meta.dirname, "..", "..", "support", "xmtp-crash-worker.ts");

interface CrashRun {
  readonly signal: NodeJS.Signals | null;
  readonly crashedAt: string | null;
  readonly answer?: unknown;
  readonly error?: string;
  readonly stderr: string;
  readonly endedAt: number;
}

/** One deployment with a group, a pool of people, and the instance that carries on after each crash. */
interface Lane {
  readonly deployment: Deployment;
  readonly next: RealXmtpInstance;
  readonly groupId: string;
  readonly pool: Person[];
}

async function startLane(people: number, protocol: XmtpProtocol): Promise<Lane> {
  const deployment = realDeployment({}, protocol);
  const [next, pool] = await Promise.all([startRealInstance(deployment), Promise.all(Array.from({ length: people }, () => createPerson({ protocol })))]);
  const groupId = (await createGroup(next.app, { name: "Never fork", description: "", rules: { type: "open" } })).groupId;
  return { deployment, next, groupId, pool };
}
const closeLane = async (lane: Lane | undefined) => {
  await lane?.next.close();
  for (const p of lane?.pool ?? []) await p.close();
};

async function crashRun(lane: Lane, op: CrashOp, crash?: CrashPlan, options: { unsafeWithoutWriteAhead?: boolean } = {}): Promise<CrashRun> {
  const dir = await mkdtemp(join(tmpdir(), "xmtp-crash-"));
  const args: CrashWorkerArgs = {
    env: { ...lane.deployment.env, XMTP_DB_DIR: dir },
    appVersion: lane.deployment.appVersion,
    leaseTtlMs: LEASE_TTL_MS,
    op,
    ...(crash ? { crash } : {}),
    ...options,
  };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--no-warnings", "--import", "tsx", WORKER, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("exit", (_code, signal) => {
      void rm(dir, { recursive: true, force: true });
      const lines = stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const crashLine = lines.find((l) => "step" in l);
      const last = lines.find((l) => "answer" in l || "error" in l);
      resolve({ signal, crashedAt: crashLine ? String(crashLine.step) : null, ...(last ?? {}), stderr, endedAt: Date.now() });
    });
  });
}

const memberIds = (lane: Lane) => lane.next.app.xmtp.withSession(async (s) => (await s.listMembers(lane.groupId)).map((m) => m.inboxId).sort());

/** The group as the backend sees it now (through the carrying-on instance), checked against every member's own view. */
async function expectOneView(lane: Lane): Promise<string[]> {
  const backend = await lane.next.app.xmtp.withSession(async (s) => {
    expect(await s.groupHealth(lane.groupId)).toMatchObject({ maybeForked: false });
    return (await s.listMembers(lane.groupId)).map((m) => m.inboxId).sort();
  });
  for (const p of lane.pool) {
    if (backend.includes(p.inboxId)) {
      expect(await p.memberInboxIds(lane.groupId), `${p.address}'s view`).toEqual(backend);
      expect((await (await p.group(lane.groupId))!.debugInfo()).maybeForked).toBe(false);
    } else {
      const own = await p.group(lane.groupId);
      expect(own === null || !own.isActive, `${p.address} is out of the group but their client has it active`).toBe(true);
    }
  }
  return backend;
}

const answeredDone = (run: CrashRun): string | null => {
  const answer = run.answer as { status?: string; results?: { result: string }[]; messageId?: string } | undefined;
  return answer?.status ?? answer?.results?.[0]?.result ?? (answer?.messageId ? "sent" : null);
};

/** A person told SUCCESS (or an operator told "added") is in the group as its members see it; one told "removed" is out. */
async function expectAnswerHolds(lane: Lane, op: CrashOp, run: CrashRun): Promise<void> {
  const told = answeredDone(run);
  // Pairs of joins check their answers themselves (see "two groups committing at once").
  if (op.kind === "send" || op.kind === "joins" || told === null) return;
  const person = lane.pool.find((p) => p.address === op.address)!;
  const inGroup = (await memberIds(lane)).includes(person.inboxId);
  if (told === "SUCCESS" || told === "added" || told === "already-member") expect(inGroup, `told ${told}`).toBe(true);
  if (told === "removed" || told === "not-a-member") expect(inGroup, `told ${told}`).toBe(false);
  if (told === "SUCCESS" || told === "added") expect(await person.memberInboxIds(lane.groupId)).toContain(person.inboxId);
}

/** What the person (or the operator) does after no answer, or a 503: ask again. It must now succeed. */
async function retry(lane: Lane, op: CrashOp): Promise<void> {
  const { next, groupId } = lane;
  if (op.kind === "join") expect(await decideJoin(next.app, { groupId, address: op.address }, "webhook")).toEqual({ status: "SUCCESS" });
  if (op.kind === "add") expect((await addMembers(next.app, groupId, [op.address])).results[0]?.result).toMatch(/^(added|already-member)$/);
  if (op.kind === "remove") expect((await removeMembers(next.app, groupId, [op.address])).results[0]?.result).toMatch(/^(removed|not-a-member)$/);
  if (op.kind === "send") await sendMessage(next.app, groupId, op.text);
}

/** Redis's member records name exactly the people XMTP has in the group (the retry repaired what a crash left half done). */
async function expectRecordsAgree(lane: Lane): Promise<void> {
  const onXmtp = await lane.next.app.xmtp.withSession(async (s) => (await s.listMembers(lane.groupId)).flatMap((m) => m.addresses));
  const recorded = (await lane.next.app.members.list(lane.groupId)).map((m) => m.address);
  expect(recorded.sort()).toEqual(onXmtp.filter((a) => a !== lane.deployment.backendAddress).sort());
}

/** The backend keeps writing: a message after the crash reaches a member. */
async function expectStillWriting(lane: Lane, tag: string): Promise<void> {
  await sendMessage(lane.next.app, lane.groupId, tag);
  const backend = await memberIds(lane);
  const reader = lane.pool.find((p) => backend.includes(p.inboxId));
  if (!reader) return;
  const texts = ((await (await reader.group(lane.groupId))?.messages()) ?? []).map((m) => m.content);
  expect(texts, `${tag} reached ${reader.address}`).toContain(tag);
}

/** One crash, then everything that has to hold. Answers how long the group took to work again. */
async function crashAndCheck(lane: Lane, op: CrashOp, crash: CrashPlan, tag: string): Promise<{ run: CrashRun; recoveredMs: number }> {
  const run = await crashRun(lane, op, crash);
  // A worker that was not killed ran to its answer (libxmtp writes its own warnings to stderr).
  if (run.signal !== "SIGKILL") expect(run.answer !== undefined || run.error !== undefined, run.stderr).toBe(true);
  await expectAnswerHolds(lane, op, run);
  await retry(lane, op);
  const recoveredMs = Date.now() - run.endedAt;
  await expectOneView(lane);
  await expectRecordsAgree(lane);
  await expectStillWriting(lane, tag);
  return { run, recoveredMs };
}

/** An op that changes something: add or join someone out of the group, remove someone in it, or send. */
async function randomOp(lane: Lane, random: () => number): Promise<CrashOp> {
  const members = await memberIds(lane);
  const outside = lane.pool.filter((p) => !members.includes(p.inboxId));
  const inside = lane.pool.filter((p) => members.includes(p.inboxId));
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const roll = random();
  if (roll < 0.3 && outside.length > 0) return { kind: "join", groupId: lane.groupId, address: pick(outside).address };
  if (roll < 0.55 && outside.length > 0) return { kind: "add", groupId: lane.groupId, address: pick(outside).address };
  if (roll < 0.85 && inside.length > 0) return { kind: "remove", groupId: lane.groupId, address: pick(inside).address };
  return { kind: "send", groupId: lane.groupId, text: `random ${roll.toFixed(6)}` };
}

const STEPS: readonly { at: string; path?: string }[] = [
  { at: "leased" },
  { at: "restored" },
  { at: "write-held", path: "SendGroupMessages" },
  { at: "checkpointed" },
  { at: "write-saved", path: "SendGroupMessages" },
  { at: "write-forwarded", path: "SendGroupMessages" },
  { at: "write-answered", path: "SendGroupMessages" },
  { at: "write-held" },
  { at: "write-forwarded" },
  { at: "welcome-answered" },
  { at: "worked" },
  { at: "uploading" },
  { at: "upload-batch" },
  { at: "uploaded" },
  { at: "committed" },
];

/** A small seeded generator (mulberry32), so a failing sequence can be replayed with NEVER_FORK_SEED. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Crashes the randomized run makes per protocol (NEVER_FORK_CRASHES; at least 50 unless set lower for a quick run). */
const RANDOM_CRASHES = Number(process.env.NEVER_FORK_CRASHES ?? 50);

for (const protocol of PROTOCOLS) {
describe(`on ${protocol}`, () => {
describe("never fork: named crash points (real processes)", () => {
  let lane: Lane;
  beforeAll(async () => {
    lane = await startLane(3, protocol);
    await addMembers(lane.next.app, lane.groupId, [lane.pool[0]!.address]);
  }, 60_000);
  afterAll(() => closeLane(lane));

  const points: [string, string, string?][] = [
    ["the commit is held, nothing saved yet", "write-held", "SendGroupMessages"],
    ["the commit's state is saved, the commit not sent", "write-saved", "SendGroupMessages"],
    ["the commit is sent", "write-forwarded", "SendGroupMessages"],
    ["the node took the commit", "write-answered", "SendGroupMessages"],
    ["the welcomes are sent", "welcome-answered"],
    ["the work is done, nothing saved at the end", "worked"],
    ["the final save is uploading", "upload-batch"],
    ["the final save is uploaded, not committed", "uploaded"],
  ];
  for (const mode of ["kill", "cut"] as const) {
    for (const [label, at, path] of points) {
      it(`${mode === "kill" ? "killed" : "Redis cut"} when ${label}: one view, answers hold, the group goes on`, async () => {
        const members = await memberIds(lane);
        const outsider = lane.pool.find((p) => !members.includes(p.inboxId))!;
        const { run } = await crashAndCheck(lane, { kind: "add", groupId: lane.groupId, address: outsider.address }, { at, ...(path ? { path } : {}), mode }, `after ${mode} at ${at}`);
        if (mode === "kill") expect(run.signal).toBe("SIGKILL");
        expect(run.crashedAt).toBe(at);
        // Out again, so the next case adds someone.
        await removeMembers(lane.next.app, lane.groupId, [outsider.address]);
      }, 60_000);
    }
  }
});

describe("never fork: randomized crash points (real processes)", () => {
  const lanes: Lane[] = [];
  afterAll(async () => {
    for (const lane of lanes) await closeLane(lane);
  });

  it(`${RANDOM_CRASHES} crashes at random points of random operations: no fork, every answer holds, the group works again`, async () => {
    const seed = Number(process.env.NEVER_FORK_SEED ?? Date.now() % 1_000_000);
    lanes.push(...(await Promise.all([startLane(3, protocol), startLane(3, protocol)])));
    const report = { seed, runs: 0, crashes: 0, kills: 0, cuts: 0, forks: 0, recoveredMs: [] as number[], byStep: {} as Record<string, number> };
    // Two independent deployments crash side by side; each case waits for its own group to be whole again.
    await Promise.all(
      lanes.map(async (lane, index) => {
        const random = seeded(seed * 31 + index);
        let crashes = 0;
        const target = Math.ceil(RANDOM_CRASHES / lanes.length);
        for (let run = 0; crashes < target && run < target * 2.4; run++) {
          const op = await randomOp(lane, random);
          const step = STEPS[Math.floor(random() * STEPS.length)]!;
          const crash: CrashPlan = { at: step.at, ...(step.path ? { path: step.path } : {}), occurrence: random() < 0.75 ? 1 : 2, mode: random() < 0.6 ? "kill" : "cut" };
          const label = `seed ${seed} lane ${index} run ${run}: ${op.kind} crashing ${crash.mode} at ${crash.at}${crash.path ? `(${crash.path})` : ""}#${crash.occurrence}`;
          try {
            const { run: result, recoveredMs } = await crashAndCheck(lane, op, crash, label);
            report.runs++;
            if (result.crashedAt) {
              crashes++;
              report.crashes++;
              report[crash.mode === "kill" ? "kills" : "cuts"]++;
              report.byStep[crash.at] = (report.byStep[crash.at] ?? 0) + 1;
              report.recoveredMs.push(recoveredMs);
            }
          } catch (error) {
            report.forks++;
            throw new Error(`${label} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
          }
        }
      }),
    );
    const sorted = [...report.recoveredMs].sort((a, b) => a - b);
    const summary = { protocol, ...report, recoveredMs: undefined, recoveredP50Ms: sorted[Math.floor(sorted.length / 2)], recoveredMaxMs: sorted.at(-1), leaseTtlMs: LEASE_TTL_MS };
    await mkdir("test/artifacts", { recursive: true });
    await writeFile(`test/artifacts/never-fork-${protocol}.json`, JSON.stringify(summary, null, 2));
    expect(report.forks).toBe(0);
    expect(report.crashes).toBeGreaterThanOrEqual(RANDOM_CRASHES);
  }, 60_000 + RANDOM_CRASHES * 6_000);
});

describe("never fork: two groups committing at once (shared checkpoints)", () => {
  let lane: Lane;
  let second: string;
  beforeAll(async () => {
    lane = await startLane(4, protocol);
    second = (await createGroup(lane.next.app, { name: "Never fork, too", description: "", rules: { type: "open" } })).groupId;
  }, 60_000);
  afterAll(() => closeLane(lane));

  const points: [string, string, string?][] = [
    ["a commit is held", "write-held", "SendGroupMessages"],
    ["the shared checkpoint is saved", "checkpointed"],
    ["a commit is sent", "write-forwarded", "SendGroupMessages"],
    ["a commit is answered", "write-answered", "SendGroupMessages"],
    ["the final save is uploading", "uploading"],
  ];
  for (const mode of ["kill", "cut"] as const) {
    for (const [label, at, path] of points) {
      it(`${mode === "kill" ? "killed" : "Redis cut"} when ${label}: each person told SUCCESS is in their group, both groups go on`, async () => {
        const members = async (groupId: string) => lane.next.app.xmtp.withSession(async (s) => (await s.listMembers(groupId)).map((m) => m.inboxId));
        const [inFirst, inSecond] = [await members(lane.groupId), await members(second)];
        const x = lane.pool.find((p) => !inFirst.includes(p.inboxId) && !inSecond.includes(p.inboxId))!;
        const y = lane.pool.find((p) => p !== x && !inFirst.includes(p.inboxId) && !inSecond.includes(p.inboxId))!;
        const joins = [
          { groupId: lane.groupId, address: x.address },
          { groupId: second, address: y.address },
        ];
        const run = await crashRun(lane, { kind: "joins", joins }, { at, ...(path ? { path } : {}), mode });
        if (mode === "kill") expect(run.signal).toBe("SIGKILL");
        expect(run.crashedAt).toBe(at);
        const answers = (run.answer as { status: string }[] | undefined) ?? [];
        for (const [i, j] of joins.entries()) {
          const person = lane.pool.find((p) => p.address === j.address)!;
          if (answers[i]?.status === "SUCCESS") expect(await person.memberInboxIds(j.groupId), `${person.address} was told SUCCESS`).toContain(person.inboxId);
          // Asked again: in, seen by themselves, one view with the backend, nobody forked.
          expect(await decideJoin(lane.next.app, j, "webhook")).toEqual({ status: "SUCCESS" });
          const backend = (await members(j.groupId)).sort();
          expect(await person.memberInboxIds(j.groupId)).toEqual(backend);
          expect((await (await person.group(j.groupId))!.debugInfo()).maybeForked).toBe(false);
          expect(await lane.next.app.xmtp.withSession((s) => s.groupHealth(j.groupId))).toMatchObject({ maybeForked: false });
        }
        // Out again, so the next case joins them afresh.
        await removeMembers(lane.next.app, lane.groupId, [x.address]);
        await removeMembers(lane.next.app, second, [y.address]);
      }, 60_000);
    }
  }
});

describe("never fork: a background writer during saves", () => {
  let lane: Lane;
  beforeAll(async () => {
    lane = await startLane(2, protocol);
    await addMembers(lane.next.app, lane.groupId, lane.pool.map((p) => p.address));
  }, 60_000);
  afterAll(() => closeLane(lane));

  it("a member's leave request is carried out by libxmtp's own worker inside sessions, and every saved version opens whole", async () => {
    const [leaver, stayer] = lane.pool as [Person, Person];
    await (await leaver.group(lane.groupId))!.requestRemoval();
    const checked: number[] = [];
    let members: string[] = [];
    // Sessions long enough for the worker's 2 s tick to fall inside them, as it may in production.
    for (let round = 0; round < 8; round++) {
      members = await lane.next.app.xmtp.withSession(async (s) => {
        await s.groupHealth(lane.groupId);
        await new Promise((r) => setTimeout(r, 2200));
        return (await s.listMembers(lane.groupId)).map((m) => m.inboxId).sort();
      });
      // Each committed version, restored on an empty disk, opens and has the group.
      const version = lane.next.xmtp.durable.localVersion!;
      const cold = await startRealInstance(lane.deployment);
      try {
        expect(await cold.app.xmtp.withSession(async (s) => (await s.getGroup(lane.groupId))?.groupId)).toBe(lane.groupId);
        checked.push(version);
      } finally {
        await cold.close();
      }
      if (!members.includes(leaver.inboxId)) break;
    }
    expect(members).not.toContain(leaver.inboxId);
    expect(members).toContain(stayer.inboxId);
    expect(checked.length).toBeGreaterThan(0);
    await expectOneView(lane);
    await expectStillWriting(lane, "after the leave");
  }, 120_000);
});

describe("the control: the same crash without saving ahead", () => {
  let lane: Lane;
  beforeAll(async () => {
    lane = await startLane(3, protocol);
  }, 60_000);
  afterAll(() => closeLane(lane));

  it("forks the backend from the group, which the checks above would catch", async () => {
    const [x, y, z] = lane.pool as [Person, Person, Person];
    await addMembers(lane.next.app, lane.groupId, [x.address]);
    const run = await crashRun(lane, { kind: "add", groupId: lane.groupId, address: y.address }, { at: "worked", mode: "kill" }, { unsafeWithoutWriteAhead: true });
    expect(run.signal).toBe("SIGKILL");
    // The network took the commit: the member's own client sees y in the group…
    expect(await x.memberInboxIds(lane.groupId)).toContain(y.inboxId);
    // …but the backend carries on from the state saved before it: its view and the member's differ,
    const backend = await memberIds(lane);
    expect(backend).not.toContain(y.inboxId);
    expect(backend).not.toEqual(await x.memberInboxIds(lane.groupId));
    // and the next person is told SUCCESS, yet the members never see them (what saving ahead prevents).
    expect(await decideJoin(lane.next.app, { groupId: lane.groupId, address: z.address }, "webhook")).toEqual({ status: "SUCCESS" });
    expect(await x.memberInboxIds(lane.groupId)).not.toContain(z.inboxId);
  }, 60_000);
});
});
}
