import * as v from "valibot";
import { DependencyFailedError } from "../shared/errors.js";

/** What a Converse-compatible link service needs to create a group link. */
export interface LinkRegistration {
  /** Called with `{groupLinkId, topic, walletAddress}` when someone asks to join. */
  readonly webhook: string;
  /** The XMTP group id. */
  readonly topic: string;
  readonly name: string;
  readonly description: string;
}

/** Registers group links. */
export interface LinkService {
  /**
   * Registers a link and answers its id.
   * @throws {LinkServiceError} when the service is unreachable, slow, or answers something other than `{id}`.
   */
  register(registration: LinkRegistration): Promise<string>;
}

/** The link service failed; the group exists and a retry with the same `Idempotency-Key` completes it (502). */
export class LinkServiceError extends DependencyFailedError {
  override readonly name = "LinkServiceError";
  constructor(message: string, groupId: string, options?: ErrorOptions) {
    super(
      message,
      "The group was created but its link could not be registered; retry with the same Idempotency-Key to finish",
      { groupId },
      options,
    );
  }
}

// The live service answered `{"id": "..."}`; anything else is not a link we can hand out.
const ResponseSchema = v.object({ id: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/)) });

/** A link service client over `fetch`, giving up after `timeoutMs`. */
export function createLinkService(options: {
  url: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}): LinkService {
  // Looked up per call, not captured: instrumentation (and test interceptors) may replace the global later.
  const doFetch: typeof fetch = (input, init) => (options.fetch ?? globalThis.fetch)(input, init);
  const timeoutMs = options.timeoutMs ?? 8000;
  return {
    async register(registration) {
      let response: Response;
      try {
        response = await doFetch(options.url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify(registration),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (cause) {
        throw new LinkServiceError("Link service unreachable", registration.topic, { cause });
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new LinkServiceError(`Link service answered HTTP ${response.status}`, registration.topic);
      }
      let body: unknown;
      try {
        body = await response.json();
      } catch (cause) {
        throw new LinkServiceError("Link service answered non-JSON", registration.topic, { cause });
      }
      const parsed = v.safeParse(ResponseSchema, body);
      if (!parsed.success) throw new LinkServiceError("Link service answered without a usable id", registration.topic);
      return parsed.output.id;
    },
  };
}
