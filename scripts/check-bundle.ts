import { installedCopies, functionEntries, MAX_GLIBC, requiredGlibc, traceFunction, VERCEL_FUNCTION_LIMIT_BYTES } from "./bundle-report.js";

// Prints what each function would ship and fails (exit 1) when a function is over Vercel's limit,
// ships a binary other than linux-x64-gnu, needs a newer glibc than the runtime has, or the binding is installed twice.
const root = process.cwd();
const mb = (n: number) => (n / 1024 / 1024).toFixed(1) + " MB";
const failures: string[] = [];

const copies = installedCopies(root, "@xmtp/node-bindings");
console.log(`@xmtp/node-bindings copies: ${copies.length} (${copies.join(", ")})`);
if (copies.length !== 1) failures.push(`expected one copy of @xmtp/node-bindings, found ${copies.length}`);

for (const entry of functionEntries(root)) {
  const report = await traceFunction(root, entry);
  console.log(`${entry}: ${report.files} files, ${mb(report.bytes)} unzipped; native: ${report.nativeBinaries.join(", ") || "none"}`);
  if (report.bytes >= VERCEL_FUNCTION_LIMIT_BYTES) failures.push(`${entry} is ${mb(report.bytes)}, over 250 MB`);
  for (const binary of report.nativeBinaries) {
    if (!binary.includes("linux-x64-gnu")) failures.push(`${entry} ships ${binary}`);
    const [major, minor] = requiredGlibc(binary);
    console.log(`  ${binary} needs glibc ${major}.${minor}`);
    if (major > MAX_GLIBC[0] || (major === MAX_GLIBC[0] && minor > MAX_GLIBC[1])) failures.push(`${binary} needs glibc ${major}.${minor} > 2.34`);
  }
}
if (failures.length) {
  console.error("Bundle check failed:\n  " + failures.join("\n  "));
  process.exit(1);
}
console.log("Bundle check passed");
