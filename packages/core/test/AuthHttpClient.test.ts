import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Clock, ConfigProvider, Duration, Effect, Fiber, Layer, Option, Redacted, Stream, TestClock } from "effect"
import * as AuthConfig from "../src/AuthConfig.js"
import * as AuthHttpClient from "../src/AuthHttpClient.js"
import type { StoredCredential } from "../src/Domain.js"
import * as CredentialResolver from "../src/CredentialResolver.js"
import { ReauthRequired } from "../src/Errors.js"
import { anthropic, type CredentialMode, openai, ProviderConfig } from "../src/Provider.js"
import * as Refresher from "../src/Refresher.js"
import * as TokenStore from "../src/TokenStore.js"
import * as Fake from "./support/fakeTokenEndpoint.js"

const HOME = "/home/someone/.agent-auth"
const MIN = 60_000
const HOUR = 60 * MIN
const CODEX = "https://chatgpt.com/backend-api/codex"
const PLATFORM = "https://api.openai.com/v1"

const openaiWith = (mode: CredentialMode = "auto") => new ProviderConfig({ ...openai, issuer: Fake.ISSUER, mode })

interface Seen {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  /** What the model endpoint answered. */
  status: number
}

/**
 * The model API (api.openai.com, chatgpt.com, any other host) and the fake token endpoint
 * behind one in-process `HttpClient`. The model side accepts a bearer only while the token
 * is valid at the current (Test)Clock time and not revoked, and the API keys it was given.
 */
const makeWorld = (options: { readonly expiresIn?: number; readonly apiKeys?: ReadonlyArray<string>; readonly delay?: Duration.DurationInput } = {}) => {
  const expiresIn = options.expiresIn ?? 3600
  const fake = Fake.make({ expiresIn })
  const validUntil = new Map<string, number>([["at-0", HOUR]])
  const revoked = new Set<string>()
  const keys = new Set(options.apiKeys ?? [])
  const seen: Array<Seen> = []
  const tokenRequestHeaders: Array<Readonly<Record<string, string>>> = []
  let refuseAll = false

  const answer = (request: HttpClientRequest.HttpClientRequest, status: number) =>
    HttpClientResponse.fromWeb(request, new Response(JSON.stringify({ ok: status === 200 }), { status, headers: { "content-type": "application/json" } }))

  const client = HttpClient.make((request, url) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      if (url.origin === new URL(Fake.ISSUER).origin) {
        tokenRequestHeaders.push(request.headers)
        const before = fake.accessTokens.length
        const response = yield* Effect.flatMap(HttpClient.HttpClient, (c) => c.execute(request)).pipe(Effect.provide(fake.layer))
        for (const token of fake.accessTokens.slice(before)) validUntil.set(token, now + expiresIn * 1000)
        return response
      }
      const entry: Seen = { url: url.href, headers: request.headers, status: 0 }
      seen.push(entry)
      if (options.delay !== undefined) yield* Effect.sleep(options.delay)
      const at = yield* Clock.currentTimeMillis
      const presented = (request.headers["authorization"] ?? "").replace(/^Bearer /, "")
      const until = validUntil.get(presented)
      const ok = !refuseAll && (keys.has(presented) || (until !== undefined && at < until && !revoked.has(presented)))
      entry.status = ok ? 200 : 401
      return answer(request, entry.status)
    })
  )

  return {
    fake,
    seen,
    tokenRequestHeaders,
    client,
    layer: Layer.succeed(HttpClient.HttpClient, client),
    revoke: (token: string) => revoked.add(token),
    refuseAll: () => {
      refuseAll = true
    },
    /** The bearer token each model request carried, in order. */
    tokensSeen: () => seen.map((s) => (s.headers["authorization"] ?? "").replace(/^Bearer /, ""))
  }
}
type World = ReturnType<typeof makeWorld>

const login = (extra: Partial<Parameters<typeof Fake.login>[0]> = {}) =>
  Fake.login({ provider: "openai", account: "me", accessToken: "at-0", expiresAt: HOUR, accountId: "acct-1", ...extra })

type Services = CredentialResolver.CredentialResolver | HttpClient.HttpClient | TokenStore.TokenStore

const services = (world: World, mode: CredentialMode = "auto") =>
  CredentialResolver.layer.pipe(
    Layer.provideMerge(Refresher.layer),
    Layer.provideMerge(
      Layer.mergeAll(
        TokenStore.layerMemory,
        Fake.registryLayer([openaiWith(mode), anthropic]),
        AuthConfig.layerWith({ home: HOME }),
        world.layer
      )
    )
  )

const run = <A, E>(
  world: World,
  effect: Effect.Effect<A, E, Services>,
  setup: { readonly stored?: ReadonlyArray<StoredCredential>; readonly env?: Record<string, string>; readonly mode?: CredentialMode } = {}
) =>
  Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    for (const c of setup.stored ?? []) yield* store.set(c)
    return yield* effect
  }).pipe(
    // Never the real environment: a developer's OPENAI_API_KEY must not change a test.
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(setup.env ?? {})))),
    Effect.provide(services(world, setup.mode))
  )

const post = <E>(client: HttpClient.HttpClient.With<E>, url: string) =>
  client.execute(HttpClientRequest.post(url)).pipe(Effect.map((r) => r.status))

const openaiClient = AuthHttpClient.make("openai")

describe("AuthHttpClient", () => {
  describe("where a credential goes", () => {
    it.effect("OpenAI with an API key: api.openai.com/v1 and Authorization only", () => {
      const world = makeWorld({ apiKeys: ["sk-env"] })
      return run(
        world,
        Effect.gen(function*() {
          const client = yield* openaiClient
          expect(yield* post(client, "/responses")).toBe(200)
          expect(world.seen[0]!.url).toBe(`${PLATFORM}/responses`)
          expect(world.seen[0]!.headers["authorization"]).toBe("Bearer sk-env")
          expect(world.seen[0]!.headers["chatgpt-account-id"]).toBeUndefined()
          expect(world.seen[0]!.headers["originator"]).toBeUndefined()
        }),
        { env: { OPENAI_API_KEY: "sk-env" } }
      )
    })

    it.effect("OpenAI with a ChatGPT login: the Codex backend, Bearer, ChatGPT-Account-Id, originator", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          const client = yield* openaiClient
          // With or without the leading slash, and with a query string kept.
          expect(yield* post(client, "/responses")).toBe(200)
          expect(yield* client.execute(HttpClientRequest.get("models", { urlParams: { client_version: "1" } })).pipe(Effect.map((r) => r.status))).toBe(200)
          expect(world.seen.map((s) => s.url)).toEqual([`${CODEX}/responses`, `${CODEX}/models?client_version=1`])
          expect(world.seen[0]!.headers).toMatchObject({
            authorization: "Bearer at-0",
            "chatgpt-account-id": "acct-1",
            originator: "agent_auth"
          })
        }),
        { stored: [login()] }
      )
    })

    it.effect("an absolute URL carries the credential only under the base URL; other hosts get nothing", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          const client = yield* openaiClient
          expect(yield* post(client, `${CODEX}/responses`)).toBe(200)
          const elsewhere = [
            "https://elsewhere.example/v1/responses",
            "https://chatgpt.com/backend-api/codexevil/responses",
            "https://chatgpt.com/backend-api/other",
            "https://chatgpt.com@elsewhere.example/backend-api/codex/responses",
            "http://chatgpt.com/backend-api/codex/responses",
            "https://chatgpt.com:8443/backend-api/codex/responses",
            `${PLATFORM}/responses`
          ]
          for (const url of elsewhere) {
            // Refused there (no credential), and the 401 is handed back as it is: no refresh.
            expect(yield* post(client, url)).toBe(401)
          }
          expect(world.seen[0]!.headers["authorization"]).toBe("Bearer at-0")
          for (const s of world.seen.slice(1)) {
            expect(s.headers["authorization"]).toBeUndefined()
            expect(s.headers["chatgpt-account-id"]).toBeUndefined()
            expect(s.headers["originator"]).toBeUndefined()
          }
          expect(world.fake.tokenCalls()).toBe(0)
        }),
        { stored: [login()] }
      )
    })

    it("isUnderBase: origin and path segment rules", () => {
      expect(AuthHttpClient.isUnderBase(`${CODEX}`, CODEX)).toBe(true)
      expect(AuthHttpClient.isUnderBase(`${CODEX}/`, CODEX)).toBe(true)
      expect(AuthHttpClient.isUnderBase(`${CODEX}/a/b`, `${CODEX}/`)).toBe(true)
      expect(AuthHttpClient.isUnderBase("https://chatgpt.com:443/backend-api/codex/x", CODEX)).toBe(true)
      expect(AuthHttpClient.isUnderBase("https://llm.acme.example/anything", "https://llm.acme.example")).toBe(true)
      expect(AuthHttpClient.isUnderBase(`${CODEX}/../x`, CODEX)).toBe(false)
      expect(AuthHttpClient.isUnderBase("https://CHATGPT.com/backend-api/codexy", CODEX)).toBe(false)
      expect(AuthHttpClient.isUnderBase("not a url", CODEX)).toBe(false)
      expect(AuthHttpClient.isUnderBase(`${CODEX}/x`, "")).toBe(false)
    })

    it.effect("no credential at all: NotLoggedIn, and nothing is sent", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          const error = yield* Effect.flip(post(yield* openaiClient, "/responses"))
          expect(error._tag).toBe("NotLoggedIn")
          expect(world.seen).toHaveLength(0)
        })
      )
    })
  })

  describe("401", () => {
    it.effect("the model API revokes mid-session: exactly one refresh, one retry, success", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          const client = yield* openaiClient
          expect(yield* post(client, "/responses")).toBe(200)
          yield* TestClock.adjust(Duration.minutes(10))
          world.revoke("at-0")
          expect(yield* post(client, "/responses")).toBe(200)
          expect(world.tokensSeen()).toEqual(["at-0", "at-0", "at-1"])
          expect(world.seen.map((s) => s.status)).toEqual([200, 401, 200])
          expect(world.fake.tokenCalls()).toBe(1)
          // Later calls use the new token without refreshing again.
          expect(yield* post(client, "/responses")).toBe(200)
          expect(world.tokensSeen().at(-1)).toBe("at-1")
          expect(world.fake.tokenCalls()).toBe(1)
          // The refreshed login was stored.
          const stored = yield* Effect.flatMap(TokenStore.TokenStore, (s) => s.get({ provider: "openai", account: "me" }))
          expect(Option.isSome(stored) && stored.value._tag === "OAuthCredential" && Redacted.value(stored.value.tokens.accessToken)).toBe("at-1")
        }),
        { stored: [login()] }
      )
    })

    it.effect("a second 401 after the refresh: ReauthRequired, one refresh, two requests, no token in the error", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          const client = yield* openaiClient
          world.refuseAll()
          const error = yield* Effect.flip(post(client, "/responses"))
          expect(error).toBeInstanceOf(ReauthRequired)
          if (!(error instanceof ReauthRequired)) return
          expect(error.provider).toBe("openai")
          expect(error.account).toBe("me")
          expect(error.message).toContain("agent-auth login openai")
          expect(world.tokensSeen()).toEqual(["at-0", "at-1"])
          expect(world.fake.tokenCalls()).toBe(1)
          const shown = `${error.message} ${JSON.stringify(error)} ${String(error)}`
          expect(shown).not.toMatch(/at-\d|rt-\d/)
        }),
        { stored: [login()] }
      )
    })

    it.effect("a refused API key is not retried: ReauthRequired naming the variable", () => {
      const world = makeWorld({ apiKeys: [] })
      return run(
        world,
        Effect.gen(function*() {
          const error = yield* Effect.flip(post(yield* openaiClient, "/responses"))
          expect(error).toBeInstanceOf(ReauthRequired)
          expect(error.message).toContain("the API key in OPENAI_API_KEY was refused (HTTP 401)")
          expect(error.message).not.toContain("sk-bad")
          expect(world.seen).toHaveLength(1)
          expect(world.fake.tokenCalls()).toBe(0)
        }),
        { env: { OPENAI_API_KEY: "sk-bad" }, stored: [login()] }
      )
    })

    it.effect("a streamed body cannot be sent twice: the 401 is returned after the refresh, the next request succeeds", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          const client = yield* openaiClient
          world.revoke("at-0")
          const streamed = HttpClientRequest.post("/responses").pipe(
            HttpClientRequest.bodyStream(Stream.make(new TextEncoder().encode("{}")), { contentType: "application/json" })
          )
          expect((yield* client.execute(streamed)).status).toBe(401)
          expect(world.fake.tokenCalls()).toBe(1)
          expect(yield* post(client, "/responses")).toBe(200)
          expect(world.tokensSeen()).toEqual(["at-0", "at-1"])
        }),
        { stored: [login()] }
      )
    })

    it.effect("a refresh the server refuses (revoked refresh token) surfaces as ReauthRequired", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          world.revoke("at-0")
          const error = yield* Effect.flip(post(yield* openaiClient, "/responses"))
          expect(error._tag).toBe("ReauthRequired")
          expect(world.seen).toHaveLength(1)
        }),
        { stored: [login({ refreshToken: "rt-unknown" })] }
      )
    })

    it.effect("many requests hit 401 at once: one refresh for all of them", () => {
      const world = makeWorld({ delay: Duration.seconds(1) })
      return run(
        world,
        Effect.gen(function*() {
          const client = yield* openaiClient
          world.revoke("at-0")
          const fiber = yield* Effect.fork(
            Effect.all(Array.from({ length: 5 }, () => post(client, "/responses")), { concurrency: "unbounded" })
          )
          yield* TestClock.adjust(Duration.seconds(1))
          yield* TestClock.adjust(Duration.seconds(1))
          expect(yield* Fiber.join(fiber)).toEqual([200, 200, 200, 200, 200])
          expect(world.fake.tokenCalls()).toBe(1)
          expect(world.tokensSeen().filter((t) => t === "at-1")).toHaveLength(5)
        }),
        { stored: [login()] }
      )
    })
  })

  // Tokens last 1 h; the login's token was issued at t=0. With the 5-minute skew a token is
  // refreshed when 5 min are left: at t=55, 110 and 165 min. Calls at t=0..180 → 3 refreshes.
  it.effect("a call a minute for 3 hours with 1-hour tokens: every call carries a valid token, exactly 3 refreshes", () => {
    const world = makeWorld({ expiresIn: 3600 })
    return run(
      world,
      Effect.gen(function*() {
        const client = yield* openaiClient
        const refreshedAt: Array<number> = []
        for (let minute = 0; minute <= 180; minute++) {
          expect(yield* Clock.currentTimeMillis).toBe(minute * MIN)
          // The model endpoint answers 200 only to a token valid now: it checks, not us.
          expect(yield* post(client, "/responses")).toBe(200)
          const tokens = world.tokensSeen()
          if (tokens.length > 1 && tokens.at(-1) !== tokens.at(-2)) refreshedAt.push(minute)
          yield* TestClock.adjust(Duration.minutes(1))
        }
        expect(world.seen).toHaveLength(181)
        expect(world.seen.every((s) => s.status === 200)).toBe(true)
        expect(world.fake.tokenCalls()).toBe(3)
        expect(refreshedAt).toEqual([55, 110, 165])
      }),
      { stored: [login()] }
    )
  })

  describe("as a plain HttpClient", () => {
    it.effect("layer replaces HttpClient; the resolver keeps the client below; ReauthRequired travels as a RequestError", () => {
      const world = makeWorld()
      // provideMerge: the services' outputs plus the wrapped HttpClient, which wins over theirs.
      const layer = AuthHttpClient.layer("openai").pipe(Layer.provideMerge(services(world)))
      return Effect.gen(function*() {
        const store = yield* TokenStore.TokenStore
        yield* store.set(login({ expiresAt: 0 }))
        const client = yield* HttpClient.HttpClient
        // Due: the resolver refreshes through the plain client (the token request carries no model credential).
        expect(yield* post(client, "/responses")).toBe(200)
        expect(world.tokensSeen()).toEqual(["at-1"])
        expect(world.tokenRequestHeaders).toHaveLength(1)
        expect(world.tokenRequestHeaders[0]!["authorization"]).toBeUndefined()
        world.refuseAll()
        const error = yield* Effect.flip(post(client, "/responses"))
        expect(error._tag).toBe("RequestError")
        expect(error.reason).toBe("Transport")
        expect(error.message).toContain("agent-auth login openai")
        const auth = AuthHttpClient.authError(error)
        expect(Option.isSome(auth) && auth.value._tag).toBe("ReauthRequired")
        expect(`${error.message} ${JSON.stringify(error.request)}`).not.toMatch(/at-\d/)
        const unwrapped = yield* Effect.flip(AuthHttpClient.unwrapAuthError(post(client, "/responses")))
        expect(unwrapped).toBeInstanceOf(ReauthRequired)
        // Other failures pass through as they are.
        expect(yield* Effect.flip(AuthHttpClient.unwrapAuthError(Effect.fail("other")))).toBe("other")
      }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.provide(layer)
      )
    })

    it.effect("withCredential: a client transform taking the resolver from the context", () => {
      const world = makeWorld()
      return run(
        world,
        Effect.gen(function*() {
          const transform = yield* AuthHttpClient.withCredential("openai", { account: "me" })
          const client = transform(world.client)
          expect(yield* post(client, "/responses")).toBe(200)
          expect(world.seen[0]!.url).toBe(`${CODEX}/responses`)
          expect(world.seen[0]!.headers["authorization"]).toBe("Bearer at-0")
        }),
        // A named account ignores the environment key.
        { stored: [login()], env: { OPENAI_API_KEY: "sk-env" } }
      )
    })

    it.effect("no recursion even when the resolver is built over the wrapped client", () => {
      const world = makeWorld()
      let real: CredentialResolver.CredentialResolverShape | undefined
      const lazy: CredentialResolver.CredentialResolverShape = {
        resolve: (provider, options) => Effect.suspend(() => real!.resolve(provider, options)),
        sources: (provider, options) => Effect.suspend(() => real!.sources(provider, options)),
        available: (options) => Effect.suspend(() => real!.available(options))
      }
      const wrapped = AuthHttpClient.wrapPlain(world.client, lazy, "openai")
      const misWired = CredentialResolver.layer.pipe(
        Layer.provideMerge(Refresher.layer),
        Layer.provideMerge(
          Layer.mergeAll(
            TokenStore.layerMemory,
            Fake.registryLayer([openaiWith()]),
            AuthConfig.layerWith({ home: HOME }),
            Layer.succeed(HttpClient.HttpClient, wrapped)
          )
        )
      )
      return Effect.gen(function*() {
        real = yield* CredentialResolver.CredentialResolver
        yield* Effect.flatMap(TokenStore.TokenStore, (s) => s.set(login({ expiresAt: 0 })))
        // Without the guard this deadlocks: the refresh would wait for the credential it is fetching.
        expect(yield* post(wrapped, "/responses")).toBe(200)
        expect(world.fake.tokenCalls()).toBe(1)
        expect(world.tokenRequestHeaders[0]!["authorization"]).toBeUndefined()
      }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.provide(misWired)
      )
    })
  })
})
