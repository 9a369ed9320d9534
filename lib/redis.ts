import { Redis } from "@upstash/redis";
import type { Config } from "./config.js";
import { StoreUnavailableError } from "./errors.js";

export type { Redis } from "@upstash/redis";

/** An Upstash REST client that hands back raw strings (we parse and validate what we read ourselves). */
export function createRedis(config: Config["redis"]): Redis {
  return new Redis({
    url: config.url,
    token: config.token,
    automaticDeserialization: false,
    enableTelemetry: false,
    retry: { retries: 2, backoff: (attempt) => 50 * 2 ** attempt },
  });
}

/**
 * Runs one store operation, turning transport and server failures into {@link StoreUnavailableError}.
 * Errors we throw on purpose inside `fn` pass through.
 */
export async function storeCall<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    // fetch failures are TypeErrors; the client's own are Upstash*Error.
    const transport = error instanceof TypeError || (error instanceof Error && /^(Upstash|Abort|Timeout)/.test(error.name));
    if (transport) throw new StoreUnavailableError(`Redis ${operation} failed`, { cause: error });
    throw error;
  }
}
