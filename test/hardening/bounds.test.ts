/**
 * Hardening, numbers and names a provider or config.json hands us (DESIGN.md, security
 * rules): a device login's polling interval is kept within 1–60 s whatever the provider
 * says (TestClock: polls are counted against test time), `authorizeParams` cannot name a
 * protocol parameter (refused when config.json is read, naming the key), and an API key
 * variable that is blank counts as unset, one with spaces around it is sent trimmed.
 */
import { HttpClient, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import {
  AuthConfig,
  CredentialResolver,
  DeviceFlow,
  JwtVerifier,
  PkceFlow,
  Provider,
  ProviderRegistry,
  Refresher,
  TokenStore
} from "@agent-auth/core"
import { FakeAuthServer, TestSecureRandom } from "@agent-auth/testing"
import { expect } from "@effect/vitest"
import { ConfigProvider, Context, Deferred, Effect, Either, Fiber, Layer, Redacted, TestClock } from "effect"
import { area } from "./support/table.js"

const ISSUER = "http://127.0.0.1:9"

/**
 * The fake server answers `slow_down` to polls that come too fast, which makes any client
 * slow down: rewritten to `authorization_pending`, only our own bound spaces the polls.
 */
const unslowed = (request: HttpClientRequest.HttpClientRequest) => (res: HttpClientResponse.HttpClientResponse) =>
  res.status !== 400 ? Effect.succeed(res) : Effect.map(Effect.orDie(res.json), (body) =>
    HttpClientResponse.fromWeb(
      request,
      new Response(
        JSON.stringify((body as { error?: string }).error === "slow_down" ? { error: "authorization_pending" } : body),
        { status: 400, headers: { "content-type": "application/json" } }
      )
    ))

/** The core services over the in-memory fake server, its device authorization answer carrying `interval`. */
const withInterval = (interval: number) => {
  const fakeAndHttp = Layer.effectContext(Effect.gen(function*() {
    const fake = yield* FakeAuthServer.makeInMemory({ issuer: ISSUER })
    const client = HttpClient.transform(fake.client, (response, request) =>
      request.url === fake.endpoints.token ? Effect.flatMap(response, unslowed(request)) :
      request.url !== fake.endpoints.deviceAuthorization ? response : Effect.gen(function*() {
        const res = yield* response
        const body = (yield* Effect.orDie(res.json)) as Record<string, unknown>
        return HttpClientResponse.fromWeb(
          request,
          new Response(JSON.stringify({ ...body, interval }), { status: res.status, headers: { "content-type": "application/json" } })
        )
      }))
    return Context.make(FakeAuthServer.FakeAuthServer, fake).pipe(Context.add(HttpClient.HttpClient, client))
  }))
  const file = { providers: { acme: { kind: "oidc" as const, issuer: ISSUER, clientId: FakeAuthServer.defaultClientId } } }
  const base = Layer.mergeAll(AuthConfig.layerWith({ home: "/test-home", file }), TokenStore.layerMemory, TestSecureRandom.layer(7)).pipe(
    Layer.provideMerge(fakeAndHttp)
  )
  const stage1 = Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
  return DeviceFlow.layer.pipe(Layer.provideMerge(stage1))
}

/** Starts a device login, moves the clock `seconds` one second at a time, counts the polls; then approves and finishes it. */
const pollsOver = (seconds: number) =>
  Effect.gen(function*() {
    const fake = yield* FakeAuthServer.FakeAuthServer
    const device = yield* DeviceFlow.DeviceFlow
    const shown = yield* Deferred.make<string>()
    const fiber = yield* Effect.fork(device.login("acme", {
      onEvent: (e) => (e._tag === "DeviceCode" ? Effect.asVoid(Deferred.succeed(shown, e.userCode)) : Effect.void)
    }))
    const code = yield* Deferred.await(shown)
    yield* TestClock.adjust("1 second")
    const firstSecond = (yield* fake.counts).deviceCode
    for (let i = 1; i < seconds; i++) yield* TestClock.adjust("1 second")
    const polls = (yield* fake.counts).deviceCode
    // Approved now, it completes at the next poll, within the bound.
    yield* fake.approveDevice(code)
    yield* TestClock.adjust("60 seconds")
    const login = yield* Fiber.join(fiber)
    return { firstSecond, polls, login }
  })

const bounds = area("bounds and config", import.meta.url)

for (const interval of [0, -1]) {
  bounds.effect(`device interval ${interval} (no pause between polls)`, "refused", (t) =>
    Effect.gen(function*() {
      const { firstSecond, login, polls } = yield* pollsOver(10)
      // One poll a second (unbounded, thousands would go out without the clock moving).
      expect(firstSecond).toBe(1)
      expect(polls).toBeLessThanOrEqual(10)
      expect(login.claims.email).toBe(FakeAuthServer.defaultUser.email)
      t.note(`1 poll in the first second, ${polls} in 10 s of test time (bound: 1 s apart), login completed`)
    }).pipe(Effect.provide(withInterval(interval))))
}

bounds.effect("device interval 10⁶ s (a login that never polls)", "refused", (t) =>
  Effect.gen(function*() {
    const { login, polls } = yield* pollsOver(60)
    expect(polls).toBe(1)
    expect(login.claims.email).toBe(FakeAuthServer.defaultUser.email)
    t.note(`${polls} poll in the first 60 s of test time (bound: 60 s apart), login completed`)
  }).pipe(Effect.provide(withInterval(1_000_000))))

const protocol = [
  "state",
  "code_challenge",
  "code_challenge_method",
  "redirect_uri",
  "client_id",
  "response_type",
  "nonce",
  "scope",
  "resource"
]

for (const key of protocol) {
  bounds.effect(`authorizeParams.${key} in config.json`, "refused", (t) =>
    Effect.sync(() => {
      const text = JSON.stringify({
        providers: {
          acme: { kind: "oidc", issuer: "https://login.acme.example", clientId: "c", authorizeParams: { prompt: "login", [key]: "plain" } }
        }
      })
      const result = AuthConfig.parseConfigFile(text, "/home/config.json")
      expect(Either.isLeft(result)).toBe(true)
      const e = Either.isLeft(result) ? result.left : undefined
      expect(e?.field).toBe(`providers.acme.authorizeParams.${key}`)
      expect(e?.message).toContain(`"${key}" is a protocol parameter`)
      expect(e?.exitCode).toBe(2)
      t.note(`ConfigInvalid at providers.acme.authorizeParams.${key}, exit 2`)
    }))
}

bounds.effect("authorizeParams.Code_Challenge_Method (another case) in config.json", "refused", (t) =>
  Effect.sync(() => {
    const text = JSON.stringify({
      providers: { openai: { authorizeParams: { Code_Challenge_Method: "plain" } } }
    })
    const result = AuthConfig.parseConfigFile(text, "/home/config.json")
    expect(Either.isLeft(result) && result.left.field).toBe("providers.openai.authorizeParams.Code_Challenge_Method")
    t.note("ConfigInvalid naming the key as written")
  }))

bounds.effect("a program's own provider sets state and code_challenge_method in authorizeParams", "refused", (t) =>
  Effect.gen(function*() {
    const flow = yield* PkceFlow.PkceFlow
    const pending = yield* flow.start("rogue", { redirectUri: "http://127.0.0.1:4242/callback" })
    const query = new URL(pending.authorizationUrl).searchParams
    expect(query.getAll("state")).toEqual([pending.state])
    expect(query.getAll("code_challenge_method")).toEqual(["S256"])
    expect(query.get("prompt")).toBe("login")
    t.note("the URL carries our state and S256; the extra prompt=login is kept")
  }).pipe(Effect.provide(
    PkceFlow.layer.pipe(
      Layer.provideMerge(Layer.mergeAll(
        ProviderRegistry.layerWith([
          Provider.ProviderConfig.make({
            ...Provider.oidcDefaults,
            id: "rogue",
            displayName: "Rogue",
            issuer: ISSUER,
            clientId: FakeAuthServer.defaultClientId,
            authorizeParams: { state: "attacker-state", code_challenge_method: "plain", prompt: "login" }
          })
        ]),
        JwtVerifier.layer
      )),
      Layer.provideMerge(Layer.mergeAll(AuthConfig.layerWith({ home: "/test-home" }), TokenStore.layerMemory, TestSecureRandom.layer(7))),
      Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER }))
    )
  )))

// ---------------------------------------------------------------- environment keys

const resolverWith = (env: Record<string, string>) =>
  CredentialResolver.layer.pipe(
    Layer.provideMerge(Refresher.layer),
    Layer.provideMerge(ProviderRegistry.layer),
    Layer.provideMerge(Layer.mergeAll(AuthConfig.layerWith({ home: "/test-home" }), TokenStore.layerMemory)),
    Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER })),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

for (const blank of ["", " ", "\t \n"]) {
  bounds.effect(`ANTHROPIC_API_KEY=${JSON.stringify(blank)} (blank)`, "refused", (t) =>
    Effect.gen(function*() {
      const resolver = yield* CredentialResolver.CredentialResolver
      const e = yield* Effect.flip(resolver.resolve("anthropic"))
      expect(e._tag).toBe("NotLoggedIn")
      t.note("counts as unset: NotLoggedIn naming ANTHROPIC_API_KEY")
    }).pipe(Effect.provide(resolverWith({ ANTHROPIC_API_KEY: blank }))))
}

bounds.effect(`ANTHROPIC_API_KEY=" sk-ant-abc \\n" (spaces around)`, "refused", (t) =>
  Effect.gen(function*() {
    const resolver = yield* CredentialResolver.CredentialResolver
    const c = yield* resolver.resolve("anthropic")
    expect(c._tag === "ApiKey" && Redacted.value(c.key)).toBe("sk-ant-abc")
    expect(Redacted.value(c.headers["x-api-key"]!)).toBe("sk-ant-abc")
    t.note("sent trimmed: x-api-key is exactly sk-ant-abc")
  }).pipe(Effect.provide(resolverWith({ ANTHROPIC_API_KEY: " sk-ant-abc \n" }))))
