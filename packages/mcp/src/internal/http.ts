/**
 * The HTTP rules of MCP discovery, which are core's (HttpRules): a GET of public metadata
 * follows no redirect (a redirect could move discovery to another host without the checks
 * noticing), and a body is read up to 1 MiB before it is parsed.
 */
import { AuthConfig, HttpRules } from "@agent-auth/core"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Clock, Effect, Option } from "effect"

/** Why a discovered or configured URL is refused (core's rule: https, or http on loopback only), naming its field; undefined when fine. */
export const secureUrlProblem = (field: string, value: string): string | undefined => {
  const problem = AuthConfig.urlProblem(value)
  return problem === undefined ? undefined : `${field} ${problem}`
}

/** Why a bounded body could not be read, in words for a message. */
export const unreadable = (e: HttpRules.TooLarge | { readonly _tag: "ResponseError"; readonly reason: string }): string =>
  e._tag === "TooLarge" ? HttpRules.tooLargeReason(e.limit) : `unreadable body (${e.reason})`

export interface JsonAnswer {
  readonly status: number
  readonly json: unknown
}

/**
 * GET `url` for JSON: no redirect followed (a 3xx is an answer like any other), the body
 * bounded, its status returned with it. Fails with a reason (for a message) when nothing
 * usable came back.
 */
export const getJson = (url: string): Effect.Effect<JsonAnswer, string, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const started = yield* Clock.currentTimeMillis
    const response = yield* HttpRules.withoutRedirects(
      client.execute(HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson))
    ).pipe(Effect.mapError((e) => (e._tag === "RequestError" ? "connection failed" : e.message)))
    yield* Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.logDebug(`GET ${url}`).pipe(
        Effect.annotateLogs({ method: "GET", endpoint: url, status: response.status, duration_ms: now - started })
      ))
    if (response.status !== 200) return { status: response.status, json: undefined }
    const json = yield* HttpRules.readJsonBounded(response).pipe(Effect.mapError(unreadable))
    if (Option.isNone(json)) return yield* Effect.fail("the answer is not JSON")
    return { status: response.status, json: json.value }
  }).pipe(Effect.scoped)
