import { describe, expect, it } from "vitest";
import { functionEntries, installedCopies, MAX_GLIBC, requiredGlibc, traceFunction, VERCEL_FUNCTION_LIMIT_BYTES } from "../scripts/bundle-report.js";

// What each Vercel function ships, traced the way @vercel/node traces it (see scripts/bundle-report.ts).
describe("function bundles", () => {
  const root = process.cwd();

  it("installs exactly one copy of @xmtp/node-bindings (the npm override dedupes it)", () => {
    expect(installedCopies(root, "@xmtp/node-bindings")).toEqual(["node_modules/@xmtp/node-bindings"]);
  });

  it.each(functionEntries(root))("%s stays under 250 MB and ships only the linux-x64-gnu binary, needing glibc ≤ 2.34", async (entry) => {
    const report = await traceFunction(root, entry);
    expect(report.bytes).toBeLessThan(VERCEL_FUNCTION_LIMIT_BYTES);
    expect(report.nativeBinaries).toEqual(["node_modules/@xmtp/node-bindings/dist/bindings_node.linux-x64-gnu.node"]);
    const [major, minor] = requiredGlibc(report.nativeBinaries[0]!);
    expect(major * 1000 + minor).toBeLessThanOrEqual(MAX_GLIBC[0] * 1000 + MAX_GLIBC[1]);
  }, 60_000);
});
