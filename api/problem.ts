/** An HTTP error answered as application/problem+json (RFC 9457). `type` is a stable slug clients can switch on. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly title: string,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? title);
  }

  body(instance?: string): Record<string, unknown> {
    return {
      type: `urn:labflow:problem:${this.type}`,
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
      ...(instance ? { instance } : {}),
      ...this.extra,
    };
  }
}

export const problems = {
  validation: (detail: string, errors: { field: string; detail: string }[]) =>
    new Problem(400, 'validation', 'The request is not valid', detail, { errors }),
  malformedJson: (detail: string) => new Problem(400, 'malformed-json', 'The request body is not valid JSON', detail),
  unauthenticated: () =>
    new Problem(
      401,
      'unauthenticated',
      'Authentication required',
      'Send an API key (or, where single sign-on is set up, an access token from the identity provider) as "Authorization: Bearer <credential>".',
      {},
      {
        'WWW-Authenticate': 'Bearer realm="labflow"',
      },
    ),
  forbidden: (detail: string) => new Problem(403, 'forbidden', 'Not allowed', detail),
  notFound: (what: string) => new Problem(404, 'not-found', 'Not found', `${what} does not exist`),
  conflict: (type: string, detail: string, extra: Record<string, unknown> = {}) => new Problem(409, type, 'Conflict', detail, extra),
  gone: (type: string, detail: string) => new Problem(410, type, 'Gone', detail),
  tooLarge: (limit: number) => new Problem(413, 'payload-too-large', 'Request body too large', `the limit is ${limit} bytes`),
  unsupportedMediaType: () => new Problem(415, 'unsupported-media-type', 'Unsupported media type', 'send application/json'),
  unprocessable: (type: string, detail: string, extra: Record<string, unknown> = {}) =>
    new Problem(422, type, 'The request cannot be carried out', detail, extra),
  unavailable: (detail: string) =>
    new Problem(503, 'dependency-unavailable', 'A dependency is unavailable', detail, {}, { 'Retry-After': '5' }),
};
