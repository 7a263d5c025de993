import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { adapt, adaptBody, foldStream } from "../src/internal/codexBackend.js"

const frame = (event: Record<string, unknown>) => `event: ${String(event["type"])}\ndata: ${JSON.stringify(event)}\n\n`

describe("codexBackend", () => {
  describe("adaptBody", () => {
    it("sets store false and stream true, and moves leading system/developer messages to instructions", () => {
      const { body, callerStreams } = adaptBody({
        model: "gpt-5",
        input: [
          { role: "system", content: "Be brief." },
          { role: "developer", content: [{ type: "input_text", text: "Use metric units." }] },
          { role: "user", content: [{ type: "input_text", text: "hi" }] },
          { role: "system", content: "not leading: stays" }
        ]
      })
      expect(callerStreams).toBe(false)
      expect(body["store"]).toBe(false)
      expect(body["stream"]).toBe(true)
      expect(body["instructions"]).toBe("Be brief.\n\nUse metric units.")
      expect((body["input"] as Array<{ role: string }>).map((m) => m.role)).toEqual(["user", "system"])
    })

    it("keeps what the caller set: instructions, store, stream", () => {
      const input = [{ role: "system", content: "kept in input" }]
      const { body, callerStreams } = adaptBody({ input, instructions: "Mine.", store: true, stream: true })
      expect(callerStreams).toBe(true)
      expect(body["instructions"]).toBe("Mine.")
      expect(body["store"]).toBe(true)
      expect(body["input"]).toEqual(input)
    })

    it("no system message: no instructions invented", () => {
      const { body } = adaptBody({ input: [{ role: "user", content: "hi" }] })
      expect(body["instructions"]).toBeUndefined()
    })
  })

  describe("foldStream", () => {
    const item = { type: "message", id: "m", role: "assistant", content: [] }

    it("takes response.completed; an empty output is filled from response.output_item.done", () => {
      const text = ": keep-alive\n\n" +
        frame({ type: "response.output_item.done", item }) +
        frame({ type: "response.completed", response: { id: "r", output: [] } }) +
        "data: [DONE]\n\n"
      expect(foldStream(text)).toEqual({ response: { id: "r", output: [item] } })
    })

    it("keeps a non-empty output as the backend sent it (CRLF frames too)", () => {
      const text = frame({ type: "response.completed", response: { id: "r", output: ["x"] } }).replace(/\n/g, "\r\n")
      expect(foldStream(text)).toEqual({ response: { id: "r", output: ["x"] } })
    })

    it("a failed or truncated stream is an error", () => {
      expect(foldStream(frame({ type: "response.failed", response: { error: { code: "server_error" } } }))).toHaveProperty("error")
      expect(foldStream(frame({ type: "response.created", response: {} }))).toHaveProperty("error")
    })
  })

  describe("adapt", () => {
    const seen: Array<{ url: string; body: unknown }> = []
    const inner = HttpClient.make((request, url) =>
      Effect.sync(() => {
        const body = request.body._tag === "Uint8Array" ? JSON.parse(new TextDecoder().decode(request.body.body)) : null
        seen.push({ url: url.href, body })
        const sseReply = url.hostname === "chatgpt.com"
        return HttpClientResponse.fromWeb(
          request,
          new Response(
            sseReply ? frame({ type: "response.completed", response: { id: "r", output: ["x"] } }) : JSON.stringify({ id: "plain" }),
            { status: 200, headers: { "content-type": sseReply ? "text/event-stream" : "application/json" } }
          )
        )
      })
    )
    const client = adapt(inner)

    it.effect("folds the Codex backend's stream into one JSON response for a non-streaming call", () =>
      Effect.gen(function*() {
        seen.length = 0
        const response = yield* client.execute(
          HttpClientRequest.post("https://chatgpt.com/backend-api/codex/responses").pipe(HttpClientRequest.bodyUnsafeJson({ input: [] }))
        )
        expect(response.headers["content-type"]).toContain("application/json")
        expect(yield* response.json).toEqual({ id: "r", output: ["x"] })
        expect(seen[0]!.body).toMatchObject({ stream: true, store: false })
      }))

    it.effect("a streaming call gets the stream as it is", () =>
      Effect.gen(function*() {
        const response = yield* client.execute(
          HttpClientRequest.post("https://chatgpt.com/backend-api/codex/responses").pipe(
            HttpClientRequest.bodyUnsafeJson({ input: [], stream: true })
          )
        )
        expect(response.headers["content-type"]).toBe("text/event-stream")
        expect(yield* response.text).toContain("response.completed")
      }))

    it.effect("other URLs pass through untouched", () =>
      Effect.gen(function*() {
        seen.length = 0
        const response = yield* client.execute(
          HttpClientRequest.post("https://api.openai.com/v1/responses").pipe(HttpClientRequest.bodyUnsafeJson({ input: [] }))
        )
        expect(yield* response.json).toEqual({ id: "plain" })
        expect(seen[0]!.body).toEqual({ input: [] })
      }))
  })
})
