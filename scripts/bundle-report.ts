import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, matchesGlob, relative } from "node:path";
import { nodeFileTrace } from "@vercel/nft";
import ts from "typescript";

/** Vercel's limit on a function's unzipped size. */
export const VERCEL_FUNCTION_LIMIT_BYTES = 250 * 1024 * 1024;
/** The newest glibc on Vercel's Amazon Linux 2023 runtime. */
export const MAX_GLIBC = [2, 34] as const;

export interface FunctionReport {
  readonly entry: string;
  readonly files: number;
  readonly bytes: number;
  readonly nativeBinaries: string[];
}

interface FunctionConfig {
  excludeFiles?: string;
  includeFiles?: string;
}

/** Every function entry point under api/, as Vercel finds them (files starting with `_` or `.` are helpers). */
export function functionEntries(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir))) {
      const rel = join(dir, name);
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (/\.ts$/.test(name) && !name.endsWith(".d.ts") && !name.startsWith("_") && !name.startsWith(".")) out.push(rel);
    }
  };
  walk("api");
  return out.sort();
}

/**
 * Traces one function the way `@vercel/node` does (nft with `ts`, `mixedModules`, the function's
 * `excludeFiles` as `ignore`, TypeScript compiled on read) and sums what would ship.
 */
export async function traceFunction(root: string, entry: string): Promise<FunctionReport> {
  const vercel = JSON.parse(readFileSync(join(root, "vercel.json"), "utf8")) as { functions?: Record<string, FunctionConfig> };
  const config = Object.entries(vercel.functions ?? {}).find(([glob]) => matchesGlob(entry, glob))?.[1] ?? {};
  const { fileList } = await nodeFileTrace([join(root, entry)], {
    base: root,
    processCwd: root,
    ts: true,
    mixedModules: true,
    ...(config.excludeFiles ? { ignore: config.excludeFiles } : {}),
    async readFile(path: string) {
      const source = readFileSync(path);
      if (/\.(ts|mts|cts)$/.test(path) && !path.endsWith(".d.ts")) {
        return ts.transpileModule(source.toString(), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: true },
        }).outputText;
      }
      return source;
    },
  });
  let bytes = 0;
  const nativeBinaries: string[] = [];
  for (const file of fileList) {
    const stat = statSync(join(root, file));
    if (stat.isFile()) bytes += stat.size;
    if (file.endsWith(".node")) nativeBinaries.push(file);
  }
  return { entry, files: fileList.size, bytes, nativeBinaries: nativeBinaries.sort() };
}

/** The highest `GLIBC_x.y` symbol version an ELF binary needs, read with objdump. */
export function requiredGlibc(binary: string): [number, number] {
  const dump = execFileSync("objdump", ["-T", binary], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  let max: [number, number] = [0, 0];
  for (const m of dump.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
    const v: [number, number] = [Number(m[1]), Number(m[2])];
    if (v[0] > max[0] || (v[0] === max[0] && v[1] > max[1])) max = v;
  }
  return max;
}

/** Directories of every installed copy of a package (to prove `overrides` deduped it). */
export function installedCopies(root: string, name: string): string[] {
  const copies: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.startsWith(".")) continue;
      const path = join(dir, e);
      if (e.startsWith("@")) {
        walk(path, depth);
        continue;
      }
      const pkg = join(path, "package.json");
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === name) copies.push(relative(root, path));
      } catch {
        // not a package
      }
      walk(join(path, "node_modules"), depth + 1);
    }
  };
  walk(join(root, "node_modules"), 0);
  return copies;
}
