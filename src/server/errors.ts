/** An error with the HTTP status the client should see (4xx: the request's fault). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
