/** A structured logger: one JSON object a line, as Vercel's log drains expect. */
export interface Logger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

// Field names whose values are never written, whatever a caller passes.
const SECRET_FIELD = /key|secret|token|password|authorization|signature|cookie/i;

// A URL's path and query may carry an API key (RPC providers put it there: /v2/<key>, ?apikey=…).
const URL_IN_TEXT = /\b(https?|wss?):\/\/([^\s/?#"'<>()]+)[^\s"'<>()]*/gi;

/** Text with every URL cut to its scheme and host: what a log line may say of an endpoint. */
export function withoutUrlSecrets(text: string): string {
  return text.replace(URL_IN_TEXT, (_url, scheme: string, host: string) => `${scheme}://${host.replace(/^[^@]*@/, "")}/…`);
}

/**
 * Describes an error for a log line: names, messages and causes, without the stack's local paths, and with
 * URLs cut to their host. viem's errors are described by their `shortMessage` (their message lists the
 * request, URL included).
 */
export function describeError(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) return { value: withoutUrlSecrets(String(error)) };
  const short = (error as { shortMessage?: unknown }).shortMessage;
  const out: Record<string, unknown> = { name: error.name, message: withoutUrlSecrets(typeof short === "string" ? short : error.message) };
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") out.code = code;
  if (error.cause !== undefined && depth < 3) out.cause = describeError(error.cause, depth + 1);
  return out;
}

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(fields)) out[k] = SECRET_FIELD.test(k) ? "[redacted]" : val;
  return out;
}

/** A logger writing JSON lines to `write` (stdout/stderr by default). */
export function createLogger(
  write: (level: "info" | "warn" | "error", line: string) => void = (level, line) =>
    (level === "info" ? process.stdout : process.stderr).write(line + "\n"),
): Logger {
  // URLs are cut to their host in the whole line, wherever in the fields they hide.
  const emit = (level: "info" | "warn" | "error", event: string, fields: Record<string, unknown> = {}) =>
    write(
      level,
      withoutUrlSecrets(
        JSON.stringify({ level, event, time: new Date().toISOString(), ...redact(fields) }, (_k, val: unknown) =>
          typeof val === "bigint" ? val.toString() : val,
        ),
      ),
    );
  return {
    info: (event, fields) => emit("info", event, fields),
    warn: (event, fields) => emit("warn", event, fields),
    error: (event, fields) => emit("error", event, fields),
  };
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
