/**
 * The two rules every exchange with a provider follows (DESIGN.md, security rules):
 * - a request that carries a secret never follows a redirect: `withoutRedirects` makes
 *   `fetch` (FetchHttpClient) hand back the 3xx itself, which the caller refuses;
 * - an answer is read up to a bound (`maxBodyBytes`), never whole into memory.
 */
import { FetchHttpClient, type HttpClientError, type HttpClientResponse } from "@effect/platform"
import { Effect, Option, Stream } from "effect"

/** The largest answer read from a provider: token, device, revocation, discovery and JWKS bodies. */
export const maxBodyBytes = 1024 * 1024

/** `effect` with `fetch` told not to follow redirects (any other `RequestInit` the caller set is kept). */
export const withoutRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(FetchHttpClient.RequestInit), (init) =>
    Effect.provideService(effect, FetchHttpClient.RequestInit, { ...Option.getOrElse(init, () => ({})), redirect: "manual" }))

export const isRedirect = (status: number): boolean => status >= 300 && status < 400

/** What a refused redirect says: its status and where it pointed (origin and path, never a query). */
export const redirectReason = (response: HttpClientResponse.HttpClientResponse): string => {
  const location = response.headers["location"]
  let where = "elsewhere"
  if (location !== undefined) {
    try {
      const u = new URL(location, response.request.url)
      where = `${u.origin}${u.pathname}`
    } catch {
      where = "an invalid location"
    }
  }
  return `answered HTTP ${response.status}, a redirect to ${where}, which was not followed (a request carrying a secret never follows a redirect)`
}

/** The body was longer than the bound; reading stopped there. */
export interface TooLarge {
  readonly _tag: "TooLarge"
  readonly limit: number
}

export const tooLargeReason = (limit: number = maxBodyBytes): string =>
  `the answer is larger than ${limit >= 1024 * 1024 ? `${limit / (1024 * 1024)} MiB` : `${limit} bytes`}; it was not read`

/**
 * The body, up to `limit` bytes: a `Content-Length` above it is refused before reading, and
 * a body without one is read chunk by chunk and abandoned as soon as it passes the bound.
 */
export const readBounded = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number = maxBodyBytes
): Effect.Effect<Uint8Array, TooLarge | HttpClientError.ResponseError> => {
  const declared = Number(response.headers["content-length"])
  if (Number.isFinite(declared) && declared > limit) return Effect.fail({ _tag: "TooLarge", limit })
  return response.stream.pipe(
    Stream.runFoldEffect({ chunks: [] as Array<Uint8Array>, size: 0 }, (acc, chunk) => {
      const size = acc.size + chunk.length
      if (size > limit) return Effect.fail<TooLarge>({ _tag: "TooLarge", limit })
      acc.chunks.push(chunk)
      return Effect.succeed({ chunks: acc.chunks, size })
    }),
    Effect.map(({ chunks, size }) => {
      const out = new Uint8Array(size)
      let at = 0
      for (const c of chunks) {
        out.set(c, at)
        at += c.length
      }
      return out
    })
  )
}

/** The bounded body as JSON: `None` when it is not JSON. */
export const readJsonBounded = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number = maxBodyBytes
): Effect.Effect<Option.Option<unknown>, TooLarge | HttpClientError.ResponseError> =>
  Effect.map(readBounded(response, limit), (bytes) => {
    try {
      return Option.some(JSON.parse(new TextDecoder().decode(bytes)) as unknown)
    } catch {
      return Option.none()
    }
  })
