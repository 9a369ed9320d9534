import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

// The layers of lib/, as folders, and which may import which: requests flow one way (api → use cases →
// membership → stores, services, eligibility, xmtp → shared), and nothing points back up.
const MAY_IMPORT: Record<string, readonly string[]> = {
  config: [],
  shared: ["config"],
  stores: ["config", "shared"],
  services: ["config", "shared"],
  eligibility: ["config", "shared"],
  xmtp: ["config", "shared"],
  membership: ["config", "shared", "stores", "xmtp"],
  "use-cases": ["config", "shared", "stores", "services", "eligibility", "xmtp", "membership"],
  http: ["config", "shared", "stores", "services", "eligibility", "xmtp", "membership", "use-cases"],
  app: ["config", "shared", "stores", "services", "eligibility", "xmtp", "membership", "use-cases", "http"],
};

const root = process.cwd();
const sources = (dir: string) =>
  (readdirSync(join(root, dir), { recursive: true }) as string[]).filter((f) => f.endsWith(".ts")).map((f) => join(dir, f).split("\\").join("/"));

/** The repository files a module imports (relative imports only), as paths from the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => relative(root, normalize(join(root, dirname(file), m[1]!))).split("\\").join("/").replace(/\.js$/, ".ts"));
}
const layerOf = (file: string) => {
  const [, first, second] = file.split("/");
  return second === undefined ? first!.replace(/\.ts$/, "") : first!;
};

describe("the house", () => {
  const lib = sources("lib");

  it("has every lib/ module in a known layer", () => {
    for (const file of lib) expect(Object.keys(MAY_IMPORT), file).toContain(layerOf(file));
  });

  it("imports only downwards between lib/ layers", () => {
    const wrong: string[] = [];
    for (const file of lib) {
      for (const target of importsOf(file)) {
        if (!target.startsWith("lib/")) wrong.push(`${file} imports ${target} (outside lib/)`);
        else if (layerOf(target) !== layerOf(file) && !MAY_IMPORT[layerOf(file)]!.includes(layerOf(target))) wrong.push(`${file} imports ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("has no import cycles in lib/", () => {
    const graph = new Map(lib.map((f) => [f, importsOf(f).filter((t) => t.startsWith("lib/"))]));
    const state = new Map<string, "open" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") return void cycles.push([...path.slice(path.indexOf(file)), file].join(" → "));
      state.set(file, "open");
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of lib) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it("keeps handlers thin: api/ reaches lib/ through the app, the HTTP helpers and the use cases only", () => {
    const wrong = sources("api").flatMap((file) =>
      importsOf(file)
        .filter((t) => !(t.startsWith("api/_") || t === "lib/app.ts" || t.startsWith("lib/http/") || t.startsWith("lib/use-cases/") || t === "lib/shared/errors.ts"))
        .map((t) => `${file} imports ${t}`),
    );
    expect(wrong).toEqual([]);
  });

  it("never lets the deployed code or the dev tools import the tests", () => {
    const wrong = [...lib, ...sources("api"), ...sources("scripts"), ...sources("local")].flatMap((file) =>
      importsOf(file).filter((t) => t.startsWith("test/")).map((t) => `${file} imports ${t}`),
    );
    expect(wrong).toEqual([]);
  });
});
