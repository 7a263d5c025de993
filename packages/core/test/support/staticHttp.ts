/** An HttpClient answering from a table of URL → JSON, counting requests; anything else is a 404. */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { Effect, Layer } from "effect"

export const staticHttp = (routes: Record<string, unknown>, seen: Array<string> = []) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.sync(() => {
        seen.push(request.url)
        const body = routes[request.url]
        return HttpClientResponse.fromWeb(
          request,
          body === undefined
            ? new Response("not found", { status: 404 })
            : new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })
        )
      })
    )
  )
