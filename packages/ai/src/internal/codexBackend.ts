/**
 * The ChatGPT Codex backend (`https://chatgpt.com/backend-api/codex/responses`, where a
 * ChatGPT login's calls go) speaks the Responses API with three differences that make an
 * unchanged `@effect/ai-openai` request fail with HTTP 400, as reported by many clients of it
 * (`{"detail":"Store must be set to false"}`, `"Stream must be set to true"`,
 * `"Instructions are required"`):
 * - `store` must be `false`: set when absent;
 * - `instructions` is required: leading `system` / `developer` messages of `input` are moved
 *   there when it is absent;
 * - only streaming is served: a non-streaming request (`generateText`) is sent with
 *   `stream: true` and the event stream is folded back into the one `Response` JSON the
 *   caller asked for (from `response.completed`, with the `response.output_item.done` items
 *   when its `output` is empty).
 * Requests elsewhere (api.openai.com with an API key) pass through unchanged.
 */
import { HttpClient, type HttpClientError, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Effect } from "effect"

export const CODEX_BASE_URL = "https://chatgpt.com/backend-api/codex"

const isCodexResponses = (request: HttpClientRequest.HttpClientRequest): boolean =>
  request.method === "POST" && request.url.replace(/\/+$/, "") === `${CODEX_BASE_URL}/responses`

type Json = Record<string, unknown>

const readJsonBody = (request: HttpClientRequest.HttpClientRequest): Json | undefined => {
  if (request.body._tag !== "Uint8Array" || !request.body.contentType.startsWith("application/json")) return undefined
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(request.body.body))
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Json) : undefined
  } catch {
    return undefined
  }
}

const textOf = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  return content
    .map((part: unknown) => (typeof part === "object" && part !== null && "text" in part && typeof part.text === "string" ? part.text : ""))
    .filter((t) => t.length > 0)
    .join("\n")
}

/** The body the backend accepts; `stream` tells whether the caller asked for a stream. */
export const adaptBody = (body: Json): { readonly body: Json; readonly callerStreams: boolean } => {
  const next: Json = { ...body }
  if (next["store"] === undefined) next["store"] = false
  if (next["instructions"] === undefined || next["instructions"] === null) {
    const input = Array.isArray(next["input"]) ? [...(next["input"] as Array<unknown>)] : []
    const hoisted: Array<string> = []
    while (input.length > 0) {
      const first = input[0]
      if (typeof first !== "object" || first === null) break
      const role = (first as Json)["role"]
      if (role !== "system" && role !== "developer") break
      hoisted.push(textOf((first as Json)["content"]))
      input.shift()
    }
    if (hoisted.length > 0) {
      next["instructions"] = hoisted.join("\n\n")
      next["input"] = input
    }
  }
  const callerStreams = next["stream"] === true
  next["stream"] = true
  return { body: next, callerStreams }
}

/** The `data:` payloads of a server-sent event stream, parsed as JSON where they are. */
const events = (text: string): Array<Json> => {
  const out: Array<Json> = []
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).replace(/^ /, ""))
      .join("\n")
    if (data === "" || data === "[DONE]") continue
    try {
      const parsed: unknown = JSON.parse(data)
      if (typeof parsed === "object" && parsed !== null) out.push(parsed as Json)
    } catch {
      // A frame that is not JSON (a keep-alive) carries nothing for the final response.
    }
  }
  return out
}

/** The final `Response` object of a stream, or the error the stream ended with. */
export const foldStream = (text: string): { readonly response: Json } | { readonly error: Json } => {
  const all = events(text)
  const items: Array<unknown> = []
  for (const event of all) {
    if (event["type"] === "response.output_item.done" && event["item"] !== undefined) items.push(event["item"])
  }
  for (let i = all.length - 1; i >= 0; i--) {
    const event = all[i]!
    const type = event["type"]
    if ((type === "response.completed" || type === "response.incomplete") && typeof event["response"] === "object") {
      const response = { ...(event["response"] as Json) }
      const output = response["output"]
      if (!Array.isArray(output) || output.length === 0) response["output"] = items
      return { response }
    }
    if (type === "response.failed" || type === "error") return { error: event }
  }
  return { error: { type: "error", message: "the event stream ended without response.completed" } }
}

const jsonResponse = (request: HttpClientRequest.HttpClientRequest, status: number, body: unknown) =>
  HttpClientResponse.fromWeb(
    request,
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })
  )

/** `client` adapted to the Codex backend for the requests that go there. */
export const adapt = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    (effect) =>
      Effect.flatMap(effect, (request) => {
        if (!isCodexResponses(request)) return client.execute(request)
        const body = readJsonBody(request)
        if (body === undefined) return client.execute(request)
        const adapted = adaptBody(body)
        const sent = HttpClientRequest.bodyUnsafeJson(request, adapted.body)
        if (adapted.callerStreams) return client.execute(sent)
        return Effect.flatMap(client.execute(sent), (response) => {
          const type = response.headers["content-type"] ?? ""
          if (response.status < 200 || response.status >= 300 || !type.includes("text/event-stream")) {
            return Effect.succeed(response)
          }
          return Effect.map(response.text, (text) => {
            const folded = foldStream(text)
            return "response" in folded
              ? jsonResponse(request, response.status, folded.response)
              : jsonResponse(request, 502, folded.error)
          })
        })
      }),
    Effect.succeed
  )
