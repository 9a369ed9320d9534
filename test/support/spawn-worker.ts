import { spawn } from "node:child_process";
import { join } from "node:path";

/** What a worker process reported and how it ended. */
export interface WorkerResult {
  acks: { value: number; version: number; before: number; baseVersion: number }[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs test/support/durable-worker.ts in its own Node process (the current Node, with tsx). */
export function runWorker(args: Record<string, unknown>): Promise<WorkerResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--no-warnings", "--import", "tsx", join(import.meta.dirname, "durable-worker.ts"), JSON.stringify(args)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("exit", (code, signal) =>
      resolve({
        acks: stdout
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as WorkerResult["acks"][number]),
        code,
        signal,
        stderr,
      }),
    );
  });
}
