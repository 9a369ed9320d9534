// `npm run groups -- <command>`: the operator API from a terminal.
// Env: GROUPS_API_URL (the deployment, e.g. https://gated.example.com), ADMIN_API_KEY; CRON_SECRET for reverify.
import { parseArgs } from "node:util";

const USAGE = `usage: npm run groups -- <command> [--json]
  list [--limit N] [--offset N]
  show <groupId>
  add <groupId> <address>...
  remove <groupId> <address>...
  send <groupId> <text>
  messages <groupId> [--limit N] [--before ISO]
  audit <groupId> [--limit N] [--offset N] [--type changes|denials|all]
  link <groupId> rotate|disable|enable
  reverify [--dry-run]`;

/** Runs one CLI command; answers the exit code. Output goes through `out`/`err` (tests capture them). */
export async function runCli(
  argv: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: "boolean" }, limit: { type: "string" }, offset: { type: "string" }, before: { type: "string" }, type: { type: "string" }, "dry-run": { type: "boolean" } },
  });
  const [command, groupId, ...rest] = positionals;
  const base = env.GROUPS_API_URL?.replace(/\/+$/, "");
  if (!command || !base) {
    err(base ? USAGE : `Set GROUPS_API_URL to the deployment's URL.\n${USAGE}`);
    return 2;
  }
  const key = command === "reverify" ? env.CRON_SECRET : env.ADMIN_API_KEY;
  if (!key) {
    err(`Set ${command === "reverify" ? "CRON_SECRET" : "ADMIN_API_KEY"} in the environment.`);
    return 2;
  }
  const query = (params: Record<string, string | undefined>) => {
    const q = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
    return q.size ? `?${q}` : "";
  };
  const needGroup = () => {
    if (!groupId) throw new UsageError(`${command} needs a group id`);
    return encodeURIComponent(groupId);
  };
  let method = "GET";
  let path: string;
  let body: unknown;
  try {
    switch (command) {
      case "list":
        path = `/api/groups${query({ limit: values.limit, offset: values.offset })}`;
        break;
      case "show":
        path = `/api/groups/${needGroup()}`;
        break;
      case "add":
      case "remove":
        path = `/api/groups/${needGroup()}/members`;
        method = command === "add" ? "POST" : "DELETE";
        if (rest.length === 0) throw new UsageError(`${command} needs at least one address`);
        body = { addresses: rest };
        break;
      case "send":
        path = `/api/groups/${needGroup()}/messages`;
        method = "POST";
        body = { text: rest.join(" ") };
        break;
      case "messages":
        path = `/api/groups/${needGroup()}/messages${query({ limit: values.limit, before: values.before })}`;
        break;
      case "audit":
        path = `/api/groups/${needGroup()}/audit${query({ limit: values.limit, offset: values.offset, type: values.type })}`;
        break;
      case "link":
        path = `/api/groups/${needGroup()}/join-link`;
        method = "POST";
        if (rest.length !== 1 || !["rotate", "disable", "enable"].includes(rest[0]!)) throw new UsageError("link needs one of rotate, disable, enable");
        body = { action: rest[0] };
        break;
      case "reverify":
        path = `/api/cron/reverify${values["dry-run"] ? "?dryRun=1" : ""}`;
        break;
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`${error.message}\n${USAGE}`);
      return 2;
    }
    throw error;
  }

  let response: Response;
  try {
    response = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    err(`Could not reach ${base}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`);
    return 1;
  }
  const data = (await response.json().catch(() => null)) as Record<string, unknown> | null;
  if (!response.ok) {
    const message = (data?.error as { message?: string } | undefined)?.message ?? `HTTP ${response.status}`;
    err(response.status === 401 ? `Not authorized: check ${command === "reverify" ? "CRON_SECRET" : "ADMIN_API_KEY"}` : response.status === 404 ? `Not found: ${message}` : `Error ${response.status}: ${message}`);
    return 1;
  }
  if (values.json) {
    out(JSON.stringify(data, null, 2));
    return 0;
  }
  out(render(command, data ?? {}));
  return 0;
}

class UsageError extends Error {}

const text = (value: unknown): string => {
  if (value === null || value === undefined) return "-";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
};

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return "(none)";
  const cells = rows.map((r) => columns.map((c) => text(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), ...cells.map(line)].join("\n");
}

function render(command: string, data: Record<string, unknown>): string {
  const list = (key: string) => (Array.isArray(data[key]) ? (data[key] as Record<string, unknown>[]) : []);
  switch (command) {
    case "list":
      return `${table(list("groups"), ["groupId", "name", "memberCount", "state", "url"])}\n${String(data.total)} group(s)`;
    case "show":
      return `${text(data.name)} (${text(data.groupId)})\n${text(data.description)}\nlink: ${text(data.url)}\njoin page: ${text(data.joinUrl)}${data.joinLinkEnabled === false ? " (disabled)" : ""}\nrules: ${JSON.stringify(data.rules)}\n\n${table(list("members"), ["address", "joinedAt", "via", "isAdmin"])}`;
    case "add":
    case "remove":
      return table(list("results"), ["address", "result"]);
    case "send":
      return `sent ${String(data.messageId)}`;
    case "link":
      return `join page: ${text(data.joinUrl)}${data.joinLinkEnabled === false ? " (disabled)" : ""}`;
    case "messages":
      return table(list("messages"), ["sentAt", "sender", "text"]);
    case "audit":
      return table(list("entries"), ["at", "source", "actor", "action", "address", "outcome", "reason"]);
    case "reverify":
      return [
        `${data.dryRun ? "would remove" : "removed"}:\n${table(list("removed"), ["groupId", "address", "reason"])}`,
        `${data.dryRun ? "would warn" : "warned"}:\n${table(list("warned"), ["groupId", "address", "reason", "removeAfter"])}`,
        `checked ${String(data.membersChecked)} member(s) in ${String(data.groupsChecked)} group(s); skipped ${list("skipped").length}; in grace ${typeof data.inGrace === "number" ? data.inGrace : 0}; removals called off ${list("cancelled").length}`,
      ].join("\n");
    default:
      return JSON.stringify(data, null, 2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await runCli(process.argv.slice(2), process.env);
}
