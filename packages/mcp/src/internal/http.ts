/**
 * The HTTP rules of MCP discovery: a GET of public metadata follows no redirect (a redirect
 * could move discovery to another host without the checks below noticing), and a body is
 * read up to 1 MiB before it is parsed.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { AuthConfig } from "@agent-auth/core"
import { Clock, Effect, Stream } from "effect"

/** Largest metadata body read. */
export const MAX_BODY = 1024 * 1024

/** Why a discovered or configured URL is refused (https, or http on loopback only), naming its field; undefined when fine. */
export const secureUrlProblem = (field: string, value: string): string | undefined => {
  const problem = AuthConfig.urlProblem(value)
  return problem === undefined ? undefined : `${field} ${problem}`
}

/** The body as text, refused past `limit` bytes. */
export const readBounded = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number = MAX_BODY
): Effect.Effect<string, string> =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    let total = 0
    yield* Stream.runForEach(response.stream, (chunk) => {
      total += chunk.length
      if (total > limit) return Effect.fail(`the body is larger than ${limit} bytes`)
      parts.push(chunk)
      return Effect.void
    }).pipe(Effect.catchTag("ResponseError", (e) => Effect.fail(`unreadable body (${e.reason})`)))
    const all = new Uint8Array(total)
    let at = 0
    for (const p of parts) {
      all.set(p, at)
      at += p.length
    }
    return new TextDecoder().decode(all)
  })

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
    const response = yield* client.execute(HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson)).pipe(
      // fetch would follow a redirect itself; told not to, it hands the 3xx back.
      Effect.provideService(FetchHttpClient.RequestInit, { redirect: "manual" }),
      Effect.mapError((e) => (e._tag === "RequestError" ? "connection failed" : e.message))
    )
    yield* Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.logDebug(`GET ${url}`).pipe(
        Effect.annotateLogs({ method: "GET", endpoint: url, status: response.status, duration_ms: now - started })
      ))
    if (response.status >= 300 && response.status < 400) return { status: response.status, json: undefined }
    const text = yield* readBounded(response)
    if (response.status !== 200) return { status: response.status, json: undefined }
    try {
      return { status: response.status, json: JSON.parse(text) as unknown }
    } catch {
      return yield* Effect.fail("the answer is not JSON")
    }
  }).pipe(Effect.scoped)
