/**
 * The service's failures. Each class says what kind of thing went wrong; `lib/http/responses.ts`
 * alone decides which HTTP status that is. Messages of client errors (4xx) are shown to
 * the caller, so they say what to fix; messages of the others are logged, never shown.
 */

/** A failure the caller can fix by changing the request (400). */
export class InvalidRequestError extends Error {
  override readonly name: string = "InvalidRequestError";
  readonly issues: readonly { path: string; message: string }[];
  constructor(message: string, issues: readonly { path: string; message: string }[] = [], options?: ErrorOptions) {
    super(message, options);
    this.issues = issues;
  }
}

/** The request body is larger than the endpoint accepts (413). */
export class PayloadTooLargeError extends Error {
  override readonly name = "PayloadTooLargeError";
  constructor(readonly limitBytes: number) {
    super(`Request body must be at most ${limitBytes} bytes`);
  }
}

/** Missing or wrong credentials (401). */
export class UnauthorizedError extends Error {
  override readonly name = "UnauthorizedError";
}

/** Known credentials, but not allowed to do this, or a cross-site request (403). */
export class ForbiddenError extends Error {
  override readonly name = "ForbiddenError";
}

/** The thing named in the request does not exist here (404). */
export class NotFoundError extends Error {
  override readonly name: string = "NotFoundError";
}

/** The HTTP method is not served by this endpoint (405). */
export class MethodNotAllowedError extends Error {
  override readonly name = "MethodNotAllowedError";
  constructor(readonly allow: readonly string[]) {
    super(`Method not allowed; use ${allow.join(", ")}`);
  }
}

/** The request conflicts with the state of the resource (409), e.g. an idempotency key reused with another body. */
export class ConflictError extends Error {
  override readonly name = "ConflictError";
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** Too many requests for a wallet or a group (429 with Retry-After). */
export class RateLimitedError extends Error {
  override readonly name = "RateLimitedError";
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A service we depend on is down or slow; the same request may succeed later (503). */
export class DependencyUnavailableError extends Error {
  override readonly name: string = "DependencyUnavailableError";
  /** Safe to show to the caller: says what to do, names nothing internal. Each kind says its own. */
  readonly publicMessage: string = "A service this depends on is unavailable; try again in a moment";
  /** The response's machine-readable code; kinds a caller should tell apart name their own. */
  readonly code: string = "unavailable";
}

/** A service we depend on answered with something we cannot use (502). */
export class DependencyFailedError extends Error {
  override readonly name: string = "DependencyFailedError";
  readonly publicMessage: string;
  readonly details: Readonly<Record<string, string>>;
  constructor(message: string, publicMessage: string, details: Record<string, string> = {}, options?: ErrorOptions) {
    super(message, options);
    this.publicMessage = publicMessage;
    this.details = details;
  }
}

/** Redis (Upstash) could not be reached or refused a command (503). */
export class StoreUnavailableError extends DependencyUnavailableError {
  override readonly name = "StoreUnavailableError";
  override readonly publicMessage = "Storage is temporarily unavailable; try again";
}

/**
 * This instance's disk failed the service's local files (full, read-only, an I/O error, too many open files):
 * another instance, or this one later, may succeed (503).
 */
export class LocalStorageError extends DependencyUnavailableError {
  override readonly name = "LocalStorageError";
  override readonly publicMessage = "The service could not use its local storage; try again in a moment";
}

/**
 * A file-system error (an errno `code` of the file system, such as ENOSPC or EIO) as a {@link LocalStorageError}
 * (its cause); anything else is answered as it is.
 */
export function asLocalStorageError(error: unknown, operation: string): unknown {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  if (typeof code === "string" && FILE_SYSTEM_CODES.has(code)) return new LocalStorageError(`${operation} failed: ${code}`, { cause: error });
  return error;
}

// Errno codes of the file system (network ones, such as ECONNREFUSED, are not this instance's disk).
const FILE_SYSTEM_CODES: ReadonlySet<string> = new Set([
  "ENOSPC", "EDQUOT", "EIO", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE", "ENOENT", "ENOTDIR", "EISDIR", "EEXIST", "ENOTEMPTY", "EBUSY", "EBADF", "EXDEV", "EFBIG",
]);

/** Stored data did not have the shape this code writes: a bug or a foreign writer, never the caller's fault (500). */
export class CorruptStateError extends Error {
  override readonly name: string = "CorruptStateError";
}

/**
 * A write refused because the lease holder that made it is no longer the newest (its fencing number moved on):
 * another instance carries on with the work, and nothing of this write was stored (503).
 */
export class FencedWriteError extends DependencyUnavailableError {
  override readonly name = "FencedWriteError";
  override readonly publicMessage = "The service is busy; try again in a moment";
}
