/** An error with the HTTP status the client should see (4xx: the request's fault), and any headers
 * that go with it (Retry-After on a 503). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
