// The API's one error shape, read from a failed response; shared by the REST client and the
// sign-in exchange so both report the server's own code and message.

/** A failed API call: the HTTP status and the error code, message and details the server sent. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    /** Seconds the server asked to wait (`Retry-After`), on a 429. */
    public retryAfter?: number,
    /** The error's `details` (a refused topic query: `position` and `expected`). */
    public details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Seconds in a `Retry-After` header (delta-seconds or an HTTP date); undefined when absent. */
export function retryAfterSecs(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, Math.ceil(secs));
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The `ApiError` a non-2xx response stands for. */
export async function apiError(res: Response): Promise<ApiError> {
  let code = "http_error";
  let message = `${res.status} ${res.statusText}`;
  let details: Record<string, unknown> = {};
  try {
    const body = await res.json();
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
    const d = body.error?.details;
    if (d && typeof d === "object" && !Array.isArray(d)) details = d;
  } catch {
    /* not the API's error shape */
  }
  return new ApiError(res.status, code, message, retryAfterSecs(res.headers.get("retry-after")), details);
}

/** What a failed call says to the person who made it: the server's message, or that it could not be reached. */
export function errorText(e: unknown): string {
  return e instanceof ApiError ? e.message : `The server could not be reached: ${(e as Error).message}`;
}
