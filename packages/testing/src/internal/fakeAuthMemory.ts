/**
 * An `HttpClient` that answers requests for the fake issuer by running the server's app
 * in the calling fiber (no socket, no event-loop hop), so a test under `TestClock` drives
 * the whole exchange. Any other URL fails as a transport error: it never reaches a network.
 */
import { HttpClient, HttpClientError, HttpClientResponse, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpApp, HttpClientRequest } from "@effect/platform"
import { Effect, Stream } from "effect"
import { RESET_HEADER } from "./fakeAuthApp.js"

const webBody = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<BodyInit | undefined> => {
  const body = request.body
  switch (body._tag) {
    case "Uint8Array":
      return Effect.succeed(body.body as Uint8Array<ArrayBuffer>)
    case "Raw":
      return Effect.succeed(body.body as BodyInit)
    case "FormData":
      return Effect.succeed(body.formData)
    case "Stream":
      return Stream.toReadableStreamEffect(body.stream) as Effect.Effect<ReadableStream<Uint8Array>>
    case "Empty":
      return Effect.succeed(undefined)
  }
}

/** Whether `url` belongs to `issuer` (same origin and under its path). */
export const underIssuer = (issuer: string, url: URL): boolean => {
  const base = new URL(issuer)
  const prefix = base.pathname.replace(/\/+$/, "")
  return url.origin === base.origin && (prefix === "" || url.pathname === prefix || url.pathname.startsWith(`${prefix}/`))
}

export const memoryClient = (issuer: string, app: HttpApp.Default): HttpClient.HttpClient =>
  HttpClient.make((request, url) => {
    const transport = (description: string) =>
      new HttpClientError.RequestError({ request, reason: "Transport", description })
    if (!underIssuer(issuer, url)) {
      return Effect.fail(transport(`the in-memory fake authorization server answers only ${issuer}; refused ${url.origin}`))
    }
    return Effect.gen(function*() {
      const body = yield* webBody(request)
      const hasBody = body !== undefined && request.method !== "GET" && request.method !== "HEAD"
      const init: RequestInit & { duplex?: "half" } = {
        method: request.method,
        headers: request.headers,
        ...(hasBody ? { body } : {}),
        ...(hasBody && request.body._tag === "Stream" ? { duplex: "half" } : {})
      }
      const serverRequest = HttpServerRequest.fromWeb(new Request(url, init))
      const response = yield* app.pipe(
        Effect.provideService(HttpServerRequest.HttpServerRequest, serverRequest),
        Effect.scoped
      )
      if (response.headers[RESET_HEADER] !== undefined) {
        return yield* transport("connection reset by the fake authorization server (injected fault)")
      }
      return HttpClientResponse.fromWeb(request, HttpServerResponse.toWeb(response))
    })
  })
