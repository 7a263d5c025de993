/**
 * The example runtime (examples/runtime.ts) run end to end against a fake OpenAI: the same
 * program, once with an API key and once with a stored ChatGPT login. The fake intercepts
 * every URL in-process (an `HttpClient` layer): nothing reaches the network.
 */
import { AuthConfig, AuthHttpClient, CredentialResolver, Domain, ProviderRegistry, Refresher, TokenStore } from "@agent-auth/core"
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import type { HttpClientRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { LanguageModel } from "@effect/ai"
import { Chunk, ConfigProvider, DateTime, Effect, Layer, Option, Redacted, Stream } from "effect"
import { ModelLive, program } from "../examples/runtime.js"

const PLATFORM_RESPONSES = "https://api.openai.com/v1/responses"
const CODEX_RESPONSES = "https://chatgpt.com/backend-api/codex/responses"
const TOKEN_ENDPOINT = "https://auth.openai.com/oauth/token"
const ANSWER = "Hello there, from the fake."

interface Seen {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Record<string, unknown>
  status: number
}

/** A minimal Responses API `Response` that @effect/ai-openai decodes. */
const responseObject = (output: ReadonlyArray<unknown>) => ({
  id: "resp_1",
  object: "response",
  status: "completed",
  created_at: 1_700_000_000,
  error: null,
  incomplete_details: null,
  instructions: null,
  model: "gpt-5",
  output,
  parallel_tool_calls: true,
  tools: [],
  tool_choice: "auto",
  metadata: null,
  temperature: null,
  top_p: null,
  usage: { input_tokens: 12, input_tokens_details: { cached_tokens: 0 }, output_tokens: 6, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 18 }
})

const message = {
  type: "message",
  id: "msg_1",
  role: "assistant",
  status: "completed",
  content: [{ type: "output_text", text: ANSWER, annotations: [] }]
}

const sse = (events: ReadonlyArray<Record<string, unknown>>) =>
  events.map((e) => `event: ${String(e["type"])}\ndata: ${JSON.stringify(e)}\n\n`).join("")

/**
 * The fake OpenAI. api.openai.com accepts `validKey`; chatgpt.com's Codex backend accepts the
 * bearer tokens in `validTokens` with the right account id and originator, and enforces the
 * backend's rules (store false, streaming only, instructions), answering a stream whose
 * `response.completed` has an empty `output` like the real one. auth.openai.com refreshes.
 */
const makeFakeOpenAi = (
  options: {
    readonly validKey?: string
    readonly validTokens?: ReadonlyArray<string>
    /** Refresh, but refuse the refreshed tokens at the model API too. */
    readonly refuseRefreshed?: boolean
  } = {}
) => {
  const seen: Array<Seen> = []
  const validTokens = new Set(options.validTokens ?? [])
  let refreshes = 0

  const json = (request: HttpClientRequest.HttpClientRequest, status: number, body: unknown, type = "application/json") =>
    HttpClientResponse.fromWeb(
      request,
      new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers: { "content-type": type } })
    )

  const client = HttpClient.make((request, url) =>
    Effect.suspend(() => {
      const text = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : "{}"
      const body = JSON.parse(text) as Record<string, unknown>
      const entry: Seen = { url: url.href, headers: request.headers, body, status: 0 }
      seen.push(entry)
      const answer = (status: number, payload: unknown, type?: string) => {
        entry.status = status
        return Effect.succeed(json(request, status, payload, type))
      }
      const bearer = (request.headers["authorization"] ?? "").replace(/^Bearer /, "")

      if (url.href === TOKEN_ENDPOINT) {
        if (body["grant_type"] !== "refresh_token" || body["refresh_token"] !== "rt-1") return answer(400, { error: "invalid_grant" })
        refreshes += 1
        const fresh = `at-chatgpt-${refreshes + 1}`
        if (options.refuseRefreshed !== true) validTokens.add(fresh)
        return answer(200, { access_token: fresh, refresh_token: "rt-1", token_type: "Bearer", expires_in: 3600 })
      }
      if (url.href === PLATFORM_RESPONSES) {
        if (options.validKey === undefined || bearer !== options.validKey) return answer(401, { error: { message: "Incorrect API key provided" } })
        return answer(200, responseObject([message]))
      }
      if (url.href === CODEX_RESPONSES) {
        const ok = validTokens.has(bearer) && request.headers["chatgpt-account-id"] === "acct-42" &&
          request.headers["originator"] === "agent_auth"
        if (!ok) return answer(401, { detail: "Unauthorized" })
        if (body["store"] !== false) return answer(400, { detail: "Store must be set to false" })
        if (body["stream"] !== true) return answer(400, { detail: "Stream must be set to true" })
        if (typeof body["instructions"] !== "string" || body["instructions"] === "") return answer(400, { detail: "Instructions are required" })
        return answer(
          200,
          sse([
            { type: "response.created", sequence_number: 0, response: { ...responseObject([]), status: "in_progress" } },
            { type: "response.output_item.added", sequence_number: 1, output_index: 0, item: { ...message, status: "in_progress", content: [] } },
            { type: "response.output_text.delta", sequence_number: 2, output_index: 0, content_index: 0, item_id: "msg_1", delta: ANSWER.slice(0, 12) },
            { type: "response.output_text.delta", sequence_number: 3, output_index: 0, content_index: 0, item_id: "msg_1", delta: ANSWER.slice(12) },
            { type: "response.output_item.done", sequence_number: 4, output_index: 0, item: message },
            { type: "response.completed", sequence_number: 5, response: responseObject([]) }
          ]),
          "text/event-stream"
        )
      }
      // Anything else would be the network: fail loudly.
      return Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: `fake: no route to ${url.href}` }))
    })
  )

  return { seen, layer: Layer.succeed(HttpClient.HttpClient, client), refreshes: () => refreshes }
}

/** agent-auth's core services over the fake, with a memory store (the test stand-in for NodeAuth.layer). */
const authServices = (http: Layer.Layer<HttpClient.HttpClient>) =>
  CredentialResolver.layer.pipe(
    Layer.provideMerge(Refresher.layer),
    Layer.provideMerge(ProviderRegistry.layer),
    Layer.provideMerge(Layer.mergeAll(TokenStore.layerMemory, AuthConfig.layerWith({ home: "/nonexistent/.agent-auth" }), http))
  )

const chatgptLogin = Domain.OAuthCredential.make({
  provider: "openai",
  account: "someone@example.com",
  tokens: Domain.TokenSet.make({
    accessToken: Redacted.make("at-chatgpt-1"),
    refreshToken: Redacted.make("rt-1"),
    expiresAt: DateTime.unsafeMake(60 * 60_000),
    scopes: ["openid", "offline_access"],
    tokenType: "Bearer"
  }),
  claims: Domain.AccountClaims.make({ email: "someone@example.com", accountId: "acct-42" }),
  obtainedAt: DateTime.unsafeMake(0)
})

/** The example's program with its model layer, over the fake and a given environment and store. */
const runExample = (
  fake: ReturnType<typeof makeFakeOpenAi>,
  setup: { readonly env?: Record<string, string>; readonly stored?: ReadonlyArray<Domain.StoredCredential> }
) =>
  Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    for (const c of setup.stored ?? []) yield* store.set(c)
    return yield* program.pipe(Effect.provide(ModelLive))
  }).pipe(
    Effect.provide(authServices(fake.layer)),
    // Never the real environment: a developer's OPENAI_API_KEY must not change a test.
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(setup.env ?? {}))))
  )

describe("examples/runtime.ts", () => {
  it.effect("with OPENAI_API_KEY: api.openai.com/v1/responses, Authorization: Bearer <key>", () => {
    const fake = makeFakeOpenAi({ validKey: "sk-test-key" })
    return Effect.gen(function*() {
      expect(yield* runExample(fake, { env: { OPENAI_API_KEY: "sk-test-key" } })).toBe(ANSWER)
      expect(fake.seen).toHaveLength(1)
      const [call] = fake.seen
      expect(call!.url).toBe(PLATFORM_RESPONSES)
      expect(call!.headers["authorization"]).toBe("Bearer sk-test-key")
      expect(call!.headers["chatgpt-account-id"]).toBeUndefined()
      expect(call!.headers["originator"]).toBeUndefined()
      // The public API gets the request as @effect/ai-openai made it.
      expect(call!.body["model"]).toBe("gpt-5")
      expect(call!.body["stream"]).toBeUndefined()
      expect(call!.body["store"]).toBeUndefined()
    })
  })

  it.effect("with a stored ChatGPT login: chatgpt.com/backend-api/codex/responses, Bearer, ChatGPT-Account-Id, originator", () => {
    const fake = makeFakeOpenAi({ validTokens: ["at-chatgpt-1"] })
    return Effect.gen(function*() {
      expect(yield* runExample(fake, { stored: [chatgptLogin] })).toBe(ANSWER)
      expect(fake.seen).toHaveLength(1)
      const [call] = fake.seen
      expect(call!.url).toBe(CODEX_RESPONSES)
      expect(call!.headers["authorization"]).toBe("Bearer at-chatgpt-1")
      expect(call!.headers["chatgpt-account-id"]).toBe("acct-42")
      expect(call!.headers["originator"]).toBe("agent_auth")
      // Adapted to the Codex backend: the system prompt became `instructions`.
      expect(call!.body["instructions"]).toBe("You are terse.")
      expect((call!.body["input"] as Array<{ role: string }>).map((m) => m.role)).toEqual(["user"])
      expect(fake.refreshes()).toBe(0)
    })
  })

  it.effect("streamText over the ChatGPT login: the backend's stream reaches the caller as text deltas", () => {
    const fake = makeFakeOpenAi({ validTokens: ["at-chatgpt-1"] })
    const streamed = LanguageModel.streamText({
      prompt: [{ role: "system", content: "You are terse." }, { role: "user", content: [{ type: "text", text: "hi" }] }]
    }).pipe(
      Stream.runCollect,
      Effect.map((parts) => Chunk.toArray(parts).flatMap((p) => (p.type === "text-delta" ? [p.delta] : [])).join(""))
    )
    return Effect.gen(function*() {
      const store = yield* TokenStore.TokenStore
      yield* store.set(chatgptLogin)
      expect(yield* streamed.pipe(Effect.provide(ModelLive))).toBe(ANSWER)
      expect(fake.seen.map((s) => s.url)).toEqual([CODEX_RESPONSES])
      expect(fake.seen[0]!.body).toMatchObject({ stream: true, store: false, instructions: "You are terse." })
    }).pipe(
      Effect.provide(authServices(fake.layer)),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
    )
  })

  it.effect("an API key in the environment wins over the login (mode auto)", () => {
    const fake = makeFakeOpenAi({ validKey: "sk-test-key", validTokens: ["at-chatgpt-1"] })
    return Effect.gen(function*() {
      yield* runExample(fake, { env: { OPENAI_API_KEY: "sk-test-key" }, stored: [chatgptLogin] })
      expect(fake.seen.map((s) => s.url)).toEqual([PLATFORM_RESPONSES])
    })
  })

  it.effect("the model API refuses the ChatGPT token: one refresh, one retry, the answer", () => {
    const fake = makeFakeOpenAi({ validTokens: [] })
    return Effect.gen(function*() {
      expect(yield* runExample(fake, { stored: [chatgptLogin] })).toBe(ANSWER)
      expect(fake.seen.map((s) => [s.url, s.status])).toEqual([
        [CODEX_RESPONSES, 401],
        [TOKEN_ENDPOINT, 200],
        [CODEX_RESPONSES, 200]
      ])
      expect(fake.seen[2]!.headers["authorization"]).toBe("Bearer at-chatgpt-2")
      // The token request went out plain: no model credential on it.
      expect(fake.seen[1]!.headers["authorization"]).toBeUndefined()
    })
  })

  it.effect("refused again after the refresh: an AiError carrying ReauthRequired and the command to run", () => {
    const fake = makeFakeOpenAi({ validTokens: [], refuseRefreshed: true })
    return Effect.gen(function*() {
      const error = yield* Effect.flip(runExample(fake, { stored: [chatgptLogin] }))
      expect(error._tag).toBe("HttpRequestError")
      expect(error.message).toContain("agent-auth login openai")
      const auth = AuthHttpClient.authError(error)
      expect(Option.isSome(auth) && auth.value._tag).toBe("ReauthRequired")
      expect(fake.seen.map((s) => s.status)).toEqual([401, 200, 401])
      expect(fake.refreshes()).toBe(1)
      expect(`${error.message} ${JSON.stringify(error)}`).not.toMatch(/at-chatgpt|rt-1/)
    })
  })

  it.effect("no credential: an AiError carrying NotLoggedIn naming OPENAI_API_KEY and the login command; nothing sent", () => {
    const fake = makeFakeOpenAi()
    return Effect.gen(function*() {
      const error = yield* Effect.flip(runExample(fake, {}))
      const auth = AuthHttpClient.authError(error)
      expect(Option.isSome(auth) && auth.value._tag).toBe("NotLoggedIn")
      expect(error.message).toContain("OPENAI_API_KEY")
      expect(error.message).toContain("agent-auth login openai")
      expect(fake.seen).toHaveLength(0)
    })
  })
})
