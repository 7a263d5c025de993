/**
 * The login flows end to end against the fake authorization server, in memory and under
 * TestClock: PKCE start → authorize → complete, pasted input, the login race, device code.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import type { AuthError, Domain } from "@agent-auth/core"
import { BrowserLauncher, CallbackServer, DeviceFlow, PkceFlow, PortUnavailable, TokenStore } from "@agent-auth/core"
import { FakeAuthServer } from "@agent-auth/testing"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Queue, Redacted, TestClock } from "effect"
import { acmeFile, ISSUER, servicesLayer } from "./support/services.js"

const REDIRECT = "http://127.0.0.1:4242/callback"
const AUDIENCE = "https://llm.acme.example/api"

/** The `aud` of a JWT access token (the fake signs them; the signature is not the point here). */
const audienceOf = (token: Redacted.Redacted<string>): unknown =>
  JSON.parse(Buffer.from(Redacted.value(token).split(".")[1]!, "base64url").toString("utf8")).aud

/** What the browser does: GET the authorization URL, return where the server redirects to. */
const authorize = (url: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(HttpClientRequest.get(url))
    expect(response.status).toBe(302)
    return response.headers["location"]!
  }).pipe(Effect.scoped)

describe("PkceFlow against the fake server", () => {
  it.effect("start → authorize → complete stores verified tokens", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const fake = yield* FakeAuthServer.FakeAuthServer
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      const url = new URL(pending.authorizationUrl)
      expect(url.searchParams.get("code_challenge_method")).toBe("S256")
      expect(url.searchParams.get("state")).toBe(pending.state)
      expect(url.searchParams.get("nonce")).toBe(pending.nonce)
      expect(pending.state.length).toBe(43) // 32 bytes, base64url
      expect(Redacted.value(pending.codeVerifier).length).toBe(86) // 64 bytes
      const location = yield* authorize(pending.authorizationUrl)
      expect(location.startsWith(REDIRECT)).toBe(true)
      const login = yield* flow.complete(pending, PkceFlow.parseCallbackInput(location))
      expect(login.claims.email).toBe(FakeAuthServer.defaultUser.email)
      expect(login.account).toBe(FakeAuthServer.defaultUser.email)
      const stored = yield* (yield* TokenStore.TokenStore).get({ provider: "acme", account: login.account })
      expect(Option.getOrThrow(stored)).toBe(login)
      expect(yield* fake.isActive(login.tokens.accessToken)).toBe(true)
      expect((yield* fake.counts).authorizationCode).toBe(1)
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("a configured audience is asked for (audience=) and the access token is issued for it", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      expect(new URL(pending.authorizationUrl).searchParams.get("audience")).toBe(AUDIENCE)
      const login = yield* flow.complete(pending, PkceFlow.parseCallbackInput(yield* authorize(pending.authorizationUrl)))
      expect(audienceOf(login.tokens.accessToken)).toEqual([AUDIENCE])
    }).pipe(Effect.provide(servicesLayer({ file: acmeFile({ audience: AUDIENCE }), fake: { jwtAccessTokens: true } }))))

  it.effect("without an audience none is asked for (the token is for the issuer)", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      expect(new URL(pending.authorizationUrl).searchParams.has("audience")).toBe(false)
      const login = yield* flow.complete(pending, PkceFlow.parseCallbackInput(yield* authorize(pending.authorizationUrl)))
      expect(audienceOf(login.tokens.accessToken)).toEqual([ISSUER])
    }).pipe(Effect.provide(servicesLayer({ fake: { jwtAccessTokens: true } }))))

  it.effect("a wrong state fails with StateMismatch and makes no token request", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const fake = yield* FakeAuthServer.FakeAuthServer
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      const location = new URL(yield* authorize(pending.authorizationUrl))
      location.searchParams.set("state", "forged")
      const e = yield* Effect.flip(flow.complete(pending, PkceFlow.parseCallbackInput(location.toString())))
      expect(e._tag).toBe("StateMismatch")
      expect((yield* fake.counts).authorizationCode).toBe(0)
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("a wrong verifier fails at the token endpoint (invalid_grant)", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      const location = yield* authorize(pending.authorizationUrl)
      const e = yield* Effect.flip(flow.complete({ ...pending, codeVerifier: Redacted.make("x".repeat(86)) }, PkceFlow.parseCallbackInput(location)))
      expect(e).toMatchObject({ _tag: "TokenEndpointError", error: "invalid_grant" })
      expect(e.message).not.toContain(Redacted.value(pending.codeVerifier))
      // The code was not consumed by the failed attempt: the right verifier still works.
      const login = yield* flow.complete(pending, PkceFlow.parseCallbackInput(location))
      expect(login.provider).toBe("acme")
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("a redirect from another issuer is refused (RFC 9207)", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      const location = new URL(yield* authorize(pending.authorizationUrl))
      expect(location.searchParams.get("iss")).toBe(ISSUER)
      location.searchParams.set("iss", "https://evil.example")
      const e = yield* Effect.flip(flow.complete(pending, PkceFlow.parseCallbackInput(location.toString())))
      expect(e).toMatchObject({ _tag: "AuthorizationDenied", error: "issuer_mismatch" })
      location.searchParams.delete("iss")
      const missing = yield* Effect.flip(flow.complete(pending, PkceFlow.parseCallbackInput(location.toString())))
      expect(missing).toMatchObject({ _tag: "AuthorizationDenied", error: "issuer_mismatch" })
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("an error= redirect with the right state is AuthorizationDenied with the description", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const pending = yield* flow.start("acme", { redirectUri: REDIRECT })
      const location = yield* authorize(pending.authorizationUrl)
      const e = yield* Effect.flip(flow.complete(pending, PkceFlow.parseCallbackInput(location)))
      expect(e).toMatchObject({ _tag: "AuthorizationDenied", error: "access_denied", description: "the user said no" })
    }).pipe(Effect.provide(servicesLayer({ fake: { authorizeError: { error: "access_denied", description: "the user said no" } } }))))
})

/** A browser that follows the authorization URL and a callback server fed by it: login's wiring, in memory. */
const loopback = Layer.unwrapEffect(Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  const redirects = yield* Queue.unbounded<string>()
  const browser = Layer.succeed(BrowserLauncher.BrowserLauncher, {
    open: (url) =>
      client.execute(HttpClientRequest.get(url)).pipe(
        Effect.flatMap((r) => Queue.offer(redirects, r.headers["location"]!)),
        Effect.scoped,
        Effect.orDie,
        Effect.as({ _tag: "Opened" as const })
      )
  })
  const server = Layer.succeed(CallbackServer.CallbackServer, {
    listen: (o) =>
      Effect.succeed({
        redirectUri: `http://${o.host}:4242${o.path}`,
        awaitCallback: (state) =>
          Effect.flatMap(Queue.take(redirects), (location) => {
            const input = PkceFlow.parseCallbackInput(location)
            expect(input.state).toBe(state)
            return Effect.succeed({ code: input.code!, state: input.state!, iss: input.iss })
          })
      })
  })
  return Layer.merge(browser, server)
}))

describe("PkceFlow.login", () => {
  it.effect("opens the browser, receives the callback, stores the login, and reports each step", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const events: Array<string> = []
      const login = yield* flow.login("acme", { onEvent: (e) => Effect.sync(() => void events.push(e._tag)), account: "work" })
      expect(login.account).toBe("work")
      expect(events).toEqual(["AuthorizationUrl", "BrowserOpened"])
    }).pipe(Effect.provide(loopback), Effect.provide(servicesLayer())))

  it.effect("a pasted redirect wins the race; a pasted wrong one is reported and another awaited", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const client = yield* HttpClient.HttpClient
      const lines = yield* Queue.unbounded<string>()
      const rejected = yield* Deferred.make<string>()
      const neverCalls = Layer.succeed(CallbackServer.CallbackServer, {
        listen: (o) => Effect.succeed({ redirectUri: `http://${o.host}:4242${o.path}`, awaitCallback: () => Effect.never })
      })
      const fiber = yield* flow.login("acme", {
        pasted: Queue.take(lines),
        onEvent: (e) =>
          e._tag === "AuthorizationUrl"
            ? Effect.gen(function*() {
              const response = yield* Effect.scoped(client.execute(HttpClientRequest.get(e.url)))
              const location = response.headers["location"]!
              const code = PkceFlow.parseCallbackInput(location).code!
              yield* Queue.offer(lines, `${Redacted.value(code)}#not-the-state`)
              yield* Queue.offer(lines, location)
            }).pipe(Effect.orDie)
            : e._tag === "PasteRejected"
            ? Effect.asVoid(Deferred.succeed(rejected, e.reason))
            : Effect.void
      }).pipe(Effect.provide(Layer.merge(neverCalls, BrowserLauncher.layerNone())), Effect.fork)
      const login = yield* Fiber.join(fiber)
      expect(yield* Deferred.await(rejected)).toContain("another login")
      expect(login.provider).toBe("acme")
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("times out after the configured time (TestClock), failing with LoginTimeout", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const silent = Layer.succeed(CallbackServer.CallbackServer, {
        listen: (o) => Effect.succeed({ redirectUri: `http://${o.host}:4242${o.path}`, awaitCallback: () => Effect.never })
      })
      // The time limit starts once the browser step is done: move the clock only after it
      // (under load the login fiber may not have got there yet when the test goes on).
      const waiting = yield* Deferred.make<void>()
      const fiber = yield* flow.login("acme", {
        timeout: "2 minutes",
        onEvent: (e) => (e._tag === "BrowserSkipped" ? Deferred.succeed(waiting, undefined).pipe(Effect.asVoid) : Effect.void)
      }).pipe(
        Effect.provide(Layer.merge(silent, BrowserLauncher.layerNone())),
        Effect.flip,
        Effect.fork
      )
      yield* Deferred.await(waiting)
      yield* TestClock.adjust("119 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      const e = yield* Fiber.join(fiber)
      expect(e).toMatchObject({ _tag: "LoginTimeout", seconds: 120 })
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("when the port is busy and nothing can be pasted, PortUnavailable surfaces", () =>
    Effect.gen(function*() {
      const flow = yield* PkceFlow.PkceFlow
      const busy = Layer.succeed(CallbackServer.CallbackServer, {
        listen: (o) => Effect.fail(new PortUnavailable({ ports: [...o.ports], provider: o.provider }))
      })
      const e = yield* Effect.flip(flow.login("acme").pipe(Effect.provide(Layer.merge(busy, BrowserLauncher.layerNone()))))
      expect(e._tag).toBe("PortUnavailable")
    }).pipe(Effect.provide(servicesLayer())))
})

describe("DeviceFlow against the fake server", () => {
  /**
   * Starts a device login in a fiber and waits until its code is shown (polling has begun,
   * so the clock may move): the login's fiber (its exit, flipped or not) and the code.
   */
  const started = <A, E, R>(
    provider: string,
    run: (login: Effect.Effect<Domain.OAuthCredential, AuthError>) => Effect.Effect<A, E, R>
  ) =>
    Effect.gen(function*() {
      const device = yield* DeviceFlow.DeviceFlow
      const shown = yield* Deferred.make<{ readonly code: string; readonly uri: string }>()
      const fiber = yield* Effect.fork(run(device.login(provider, {
        onEvent: (e) =>
          e._tag === "DeviceCode" ? Effect.asVoid(Deferred.succeed(shown, { code: e.userCode, uri: e.verificationUri })) : Effect.void
      })))
      return { fiber, ...(yield* Deferred.await(shown)) }
    })

  it.effect("RFC 8628: shows the code, polls at the interval, stores the login once approved", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const { code: userCode, fiber } = yield* started("acme", (login) => login)
      yield* TestClock.adjust("5 seconds")
      yield* TestClock.adjust("5 seconds")
      expect((yield* fake.counts).deviceCode).toBe(2) // two polls, both pending
      expect(yield* fake.approveDevice(userCode)).toBe(true)
      yield* TestClock.adjust("5 seconds")
      const login = yield* Fiber.join(fiber)
      expect(login.claims.email).toBe(FakeAuthServer.defaultUser.email)
      expect((yield* fake.counts).deviceCode).toBe(3)
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("a configured audience is sent with the device authorization request", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const { code, fiber } = yield* started("acme", (login) => login)
      expect(yield* fake.approveDevice(code)).toBe(true)
      yield* TestClock.adjust("5 seconds")
      const login = yield* Fiber.join(fiber)
      expect(audienceOf(login.tokens.accessToken)).toEqual([AUDIENCE])
    }).pipe(Effect.provide(servicesLayer({ file: acmeFile({ audience: AUDIENCE }), fake: { jwtAccessTokens: true } }))))

  it.effect("a denied code is AuthorizationDenied", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const { code, fiber } = yield* started("acme", Effect.flip)
      yield* fake.denyDevice(code)
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "AuthorizationDenied", error: "access_denied" })
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("a poll answered with a redirect ends the login at once (NetworkError), not at the code's expiry", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const { fiber } = yield* started("acme", Effect.flip)
      yield* fake.inject(FakeAuthServer.Fault.status(302), { times: 100 })
      yield* TestClock.adjust("5 seconds")
      const e = yield* Fiber.join(fiber)
      expect(e).toMatchObject({ _tag: "NetworkError", final: true })
      expect(e.message).toContain("not followed")
      expect((yield* fake.counts).deviceCode).toBe(1)
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("an unapproved code ends in LoginTimeout when its lifetime is over", () =>
    Effect.gen(function*() {
      // The clock moves once the code is shown (the polling has started), not before.
      const { fiber } = yield* started("acme", Effect.flip)
      yield* TestClock.adjust("16 minutes")
      expect((yield* Fiber.join(fiber))._tag).toBe("LoginTimeout")
    }).pipe(Effect.provide(servicesLayer({ fake: { deviceCodeTtl: "10 minutes" } }))))

  it.effect("OpenAI's variant: user code, polling, then the code exchange with the device redirect", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const { code, fiber, uri } = yield* started("openai", (login) => login)
      expect(uri).toBe(`${ISSUER}/codex/device`)
      yield* TestClock.adjust("5 seconds")
      yield* fake.approveDevice(code)
      yield* TestClock.adjust("5 seconds")
      const login = yield* Fiber.join(fiber)
      expect(login.claims.accountId).toBe(FakeAuthServer.defaultUser.openai.chatgpt_account_id)
      expect(login.account).toBe(FakeAuthServer.defaultUser.openai.chatgpt_account_id)
      expect(login.claims.plan).toBe(FakeAuthServer.defaultUser.openai.chatgpt_plan_type)
    }).pipe(Effect.provide(servicesLayer({ fake: { flavor: "openai" }, file: { providers: { openai: { issuer: ISSUER } } } }))))

})
