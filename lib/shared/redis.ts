import { Redis } from "@upstash/redis";
import * as v from "valibot";
import type { Config } from "../config.js";
import { StoreUnavailableError } from "./errors.js";

export type { Redis } from "@upstash/redis";

/**
 * An Upstash REST client that hands back raw strings (we parse and validate what we read ourselves).
 * `plainResponses` turns off Upstash's base64 response encoding, for values that are already ASCII
 * (base64 snapshot chunks): it saves a third of the bytes on the wire.
 */
export function createRedis(config: Pick<Config["redis"], "url" | "token">, options: { plainResponses?: boolean } = {}): Redis {
  return new Redis({
    url: config.url,
    token: config.token,
    automaticDeserialization: false,
    enableTelemetry: false,
    retry: { retries: 2, backoff: (attempt) => 50 * 2 ** attempt },
    // Accepted by the Node client at runtime (passed to its HttpClient) though missing from its config type.
    ...(options.plainResponses ? ({ responseEncoding: false } as object) : {}),
  });
}

/**
 * A lease holder's fencing number and the key holding the newest one: a write made under it is refused once a
 * newer holder exists (the check and the write are one Lua step).
 */
export interface WriteFence {
  readonly key: string;
  readonly value: number;
}

/**
 * Runs one store operation, turning transport and server failures into {@link StoreUnavailableError}.
 * Errors we throw on purpose inside `fn` pass through, and so do bugs (a TypeError that is not a fetch failure).
 */
export async function storeCall<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    // fetch failures are TypeErrors that carry the network error as their cause (a TypeError without one is a
    // bug, and must not pass for an outage); the client's own are Upstash*Error.
    const transport = (error instanceof TypeError && error.cause !== undefined) || (error instanceof Error && /^(Upstash|Abort|Timeout)/.test(error.name));
    if (transport) throw new StoreUnavailableError(`Redis ${operation} failed`, { cause: error });
    throw error;
  }
}

/**
 * Reads a stored JSON value through a schema: the value, or `undefined` when it is missing, not JSON or not of
 * the expected shape (a record written by an older version, or by hand, is treated as absent, never trusted).
 */
export function parseStored<const S extends v.GenericSchema>(schema: S, raw: unknown): v.InferOutput<S> | undefined {
  let value: unknown = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  if (value === null || value === undefined) return undefined;
  const parsed = v.safeParse(schema, value);
  return parsed.success ? parsed.output : undefined;
}
