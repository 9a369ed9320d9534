import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { functionFiles } from "./local-server.js";

// `npm run check:build`, after `vercel build`: checks what would be deployed (.vercel/output), not a model of it.
// Fails (exit 1) when a function is missing or extra, over Vercel's 250 MB, ships a native binary other than
// linux-x64-gnu or one needing glibc > 2.34 (Amazon Linux 2023), runs on another Node than CI tests, has other
// limits than vercel.json's, when the cron or the join-page rewrite is missing, or when a function cannot load.

const root = process.cwd();
const output = join(root, ".vercel/output");
const LIMIT_BYTES = 250 * 1024 * 1024;
const MAX_GLIBC = [2, 34] as const;
const failures: string[] = [];
const fail = (message: string) => failures.push(message);
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

if (!existsSync(join(output, "config.json"))) {
  console.error("No .vercel/output: run `npx vercel build` first (see .ci/run)");
  process.exit(1);
}

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { engines?: { node?: string } };
const vercelJson = JSON.parse(readFileSync(join(root, "vercel.json"), "utf8")) as {
  functions: Record<string, { maxDuration?: number; memory?: number }>;
  crons?: { path: string; schedule: string }[];
  rewrites?: { source: string; destination: string }[];
};
const expectedRuntime = `nodejs${(pkg.engines?.node ?? "").replace(/\.x$/, "")}.x`;
// Vercel applies the first pattern that matches a function's source file (exact paths are listed first).
const limitsOf = (name: string) => {
  const source = `${name.replace(/\.func$/, "")}.ts`;
  const exact = vercelJson.functions[source];
  return exact ?? Object.entries(vercelJson.functions).find(([pattern]) => pattern.includes("*"))?.[1] ?? {};
};
const ciNode = `nodejs${process.versions.node.split(".")[0]}.x`;
if (expectedRuntime !== ciNode) fail(`package.json engines give ${expectedRuntime}, but CI tests ${ciNode}`);

// The functions Vercel should have made: one per api/ file, helpers (`_…`) excepted.
const apiFiles = functionFiles(join(root, "api"))
  .map((f) => `api/${f.replace(/\.ts$/, "")}`)
  .sort();
const funcDirs: string[] = [];
const walk = (dir: string) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name.endsWith(".func")) funcDirs.push(path);
    else if (entry.isDirectory()) walk(path);
  }
};
walk(join(output, "functions"));
const built = funcDirs.map((d) => relative(join(output, "functions"), d).replace(/\.func$/, "")).sort();
if (JSON.stringify(built) !== JSON.stringify(apiFiles)) fail(`functions built: ${built.join(", ")}; api/ has: ${apiFiles.join(", ")}`);

/** Bytes of a function as unpacked (symlinks followed, each file counted once), and its native binaries. */
function measure(dir: string): { bytes: number; files: number; natives: string[] } {
  const seen = new Set<string>();
  const natives: string[] = [];
  let bytes = 0;
  const visit = (path: string) => {
    const real = realpathSync(path);
    if (seen.has(real)) return;
    seen.add(real);
    const stat = statSync(real);
    if (stat.isDirectory()) {
      for (const name of readdirSync(real)) visit(join(path, name));
      return;
    }
    bytes += stat.size;
    if (path.endsWith(".node") || lstatSync(path).isFile() && /\.so(\.\d+)*$/.test(path)) natives.push(relative(dir, path));
  };
  visit(dir);
  return { bytes, files: seen.size, natives };
}

function requiredGlibc(binary: string): [number, number] {
  const dump = execFileSync("objdump", ["-T", binary], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  let max: [number, number] = [0, 0];
  for (const m of dump.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
    const v: [number, number] = [Number(m[1]), Number(m[2])];
    if (v[0] > max[0] || (v[0] === max[0] && v[1] > max[1])) max = v;
  }
  return max;
}

const glibcOf = new Map<string, [number, number]>();
const handlers = new Map<string, string>();
for (const dir of funcDirs) {
  const name = relative(join(output, "functions"), dir);
  const config = JSON.parse(readFileSync(join(dir, ".vc-config.json"), "utf8")) as { runtime?: string; maxDuration?: number; memory?: number; handler: string; architecture?: string };
  handlers.set(dir, config.handler);
  const { bytes, files, natives } = measure(dir);
  console.log(`${name}: ${files} files, ${mb(bytes)} unzipped, ${config.runtime}, ${config.maxDuration} s, ${config.memory} MB; native: ${natives.join(", ") || "none"}`);
  if (bytes >= LIMIT_BYTES) fail(`${name} is ${mb(bytes)}, over Vercel's 250 MB`);
  if (config.runtime !== expectedRuntime) fail(`${name} runs on ${config.runtime}, not ${expectedRuntime}`);
  if (config.architecture !== undefined && config.architecture !== "x86_64") fail(`${name} is built for ${config.architecture}`);
  const limits = limitsOf(name);
  if (config.maxDuration !== limits.maxDuration) fail(`${name} maxDuration ${config.maxDuration}, vercel.json says ${limits.maxDuration}`);
  if (config.memory !== limits.memory) fail(`${name} memory ${config.memory}, vercel.json says ${limits.memory}`);
  if (JSON.stringify(natives) !== JSON.stringify(["node_modules/@xmtp/node-bindings/dist/bindings_node.linux-x64-gnu.node"])) {
    fail(`${name} ships native binaries ${JSON.stringify(natives)}; expected only the linux-x64-gnu XMTP binding`);
  }
  for (const native of natives.filter((n) => n.includes("linux"))) {
    const real = realpathSync(join(dir, native));
    let needed: [number, number];
    try {
      needed = glibcOf.get(real) ?? requiredGlibc(real);
    } catch (error) {
      fail(`${name}: objdump could not read ${native} (${String((error as { stderr?: string }).stderr || (error as Error).message).trim()})`);
      continue;
    }
    const [major, minor] = needed;
    glibcOf.set(real, [major, minor]);
    if (major > MAX_GLIBC[0] || (major === MAX_GLIBC[0] && minor > MAX_GLIBC[1])) fail(`${name}: ${native} needs glibc ${major}.${minor} > 2.34`);
  }
}
const needs = new Set([...glibcOf.values()].map(([major, minor]) => `${major}.${minor}`));
console.log(`native binaries need glibc ${[...needs].join(", ")} (the runtime has 2.34)`);

// The deployed routing: the cron and the join page's rewrite.
const routing = JSON.parse(readFileSync(join(output, "config.json"), "utf8")) as { crons?: { path: string; schedule: string }[]; routes?: { src?: string; dest?: string }[] };
for (const cron of vercelJson.crons ?? []) {
  if (!routing.crons?.some((c) => c.path === cron.path && c.schedule === cron.schedule)) fail(`cron ${cron.path} (${cron.schedule}) is not in the build`);
  if (!built.includes(cron.path.replace(/^\//, ""))) fail(`cron ${cron.path} has no function`);
}
for (const rewrite of vercelJson.rewrites ?? []) {
  const destination = rewrite.destination.split("?")[0]!;
  if (!routing.routes?.some((r) => r.dest?.startsWith(destination))) fail(`rewrite ${rewrite.source} → ${rewrite.destination} is not in the build`);
}

// Each built function loads on this Node, as the runtime would import it, and the XMTP binding inside it loads.
const create = funcDirs.find((d) => d.endsWith("/api/create.func"));
/** Runs `code` as an ES module in `dir` on this Node: null when it ran, else the first line it printed. */
function probe(dir: string, code: string, env?: NodeJS.ProcessEnv): string | null {
  try {
    execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd: dir, ...(env ? { env } : {}), stdio: "pipe", timeout: 60_000 });
    return null;
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error).split("\n").find((l) => l.trim()) ?? "unknown";
  }
}
for (const dir of funcDirs) {
  const failure = probe(
    dir,
    `const m = await import(${JSON.stringify(join(dir, handlers.get(dir)!))}); if (typeof m.default?.fetch !== "function") throw new Error("no fetch handler");`,
    { PATH: process.env.PATH ?? "" },
  );
  if (failure !== null) fail(`${relative(output, dir)} does not load: ${failure}`);
}
if (create) {
  const failure = probe(
    create,
    `const { createRequire } = await import("node:module"); const b = createRequire(${JSON.stringify(join(create, "package.json"))})("@xmtp/node-bindings"); if (typeof b.Client !== "function" && typeof b.createClient !== "function") throw new Error("binding has no client");`,
  );
  if (failure !== null) fail(`the XMTP binding does not load from api/create.func: ${failure}`);
  else console.log("api/create.func: the XMTP binding loads from the function's own files");
}

if (failures.length > 0) {
  console.error(`Build check failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log(`Build check passed: ${funcDirs.length} functions`);
