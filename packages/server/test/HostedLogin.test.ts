/**
 * The hosted sign-in routes end to end against the in-memory fake authorization server,
 * under TestClock, with two principals (alice, bob) named by a header: a login completes
 * into the right principal's store, and neither principal can read, complete, overwrite or
 * log out the other's logins through the routes.
 */
import { AuthConfig, JwtVerifier, ProviderRegistry } from "@agent-auth/core"
import { FakeAuthServer, TestSecureRandom } from "@agent-auth/testing"
import { HttpClient, HttpClientRequest, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, TestClock } from "effect"
import { HostedLogin, PendingLogins, PrincipalStores } from "../src/index.js"

const ISSUER = "http://127.0.0.1:9"
const PUBLIC = "https://agents.example"

const options: HostedLogin.Options = {
  publicUrl: PUBLIC,
  timeToLive: "5 minutes",
  principal: (request) => Effect.succeed(Option.fromNullable(request.headers["x-principal"]))
}

/** A hosted service is a web application: a confidential client with its exact redirect URI. */
const WEB_CLIENT = { clientId: "agents-web", clientSecret: "agents-web-secret-for-tests", redirectUris: [`${PUBLIC}/auth/callback`], allowLoopbackRedirects: false }

const layer = (() => {
  const base = Layer.mergeAll(
    AuthConfig.layerWith({
      file: {
        providers: {
          acme: { kind: "oidc", issuer: ISSUER, clientId: WEB_CLIENT.clientId, clientSecret: Redacted.make(WEB_CLIENT.clientSecret) }
        }
      }
    }),
    TestSecureRandom.layer(3),
    PendingLogins.layerMemory,
    PrincipalStores.layerMemory
  ).pipe(Layer.provideMerge(FakeAuthServer.layerInMemory({ issuer: ISSUER, clients: [WEB_CLIENT] })))
  return Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
})()

interface Answer {
  readonly status: number
  readonly location: string | undefined
  readonly body: string
}

/** One request through the routes, as `principal` (or nobody). */
const call = (method: "GET" | "POST", path: string, principal?: string) =>
  Effect.gen(function*() {
    const app = yield* HttpRouter.toHttpApp(HostedLogin.router(options))
    const request = new Request(new URL(path, PUBLIC), {
      method,
      headers: principal === undefined ? {} : { "x-principal": principal }
    })
    const response = yield* app.pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(request)),
      Effect.catchTag("RouteNotFound", () => Effect.succeed(HttpServerResponse.empty({ status: 404 })))
    )
    const web = HttpServerResponse.toWeb(response)
    return { status: web.status, location: web.headers.get("location") ?? undefined, body: yield* Effect.promise(() => web.text()) } as Answer
  })

/** What the browser does at the provider: the fake approves at once and redirects to the callback. */
const authorize = (url: string) =>
  Effect.gen(function*() {
    const response = yield* (yield* HttpClient.HttpClient).execute(HttpClientRequest.get(url))
    expect(response.status).toBe(302)
    return response.headers["location"]!
  }).pipe(Effect.scoped)

/** The callback URL's path and query, as the browser would request it from the service. */
const callbackPath = (location: string) => {
  const url = new URL(location)
  expect(`${url.origin}${url.pathname}`).toBe(`${PUBLIC}/auth/callback`)
  return `${url.pathname}${url.search}`
}

/** Starts a login as `principal` and returns the callback path the provider sends back. */
const startLogin = (principal: string) =>
  Effect.gen(function*() {
    const started = yield* call("GET", "/auth/login/acme", principal)
    expect(started.status).toBe(303)
    return callbackPath(yield* authorize(started.location!))
  })

const storeOf = (principal: string) => Effect.flatMap(PrincipalStores.PrincipalStores, (s) => s.forPrincipal(principal))
const accessTokens = (principal: string) =>
  Effect.map(Effect.flatMap(storeOf(principal), (s) => s.list()), (list) =>
    list.map((c) => (c._tag === "OAuthCredential" ? Redacted.value(c.tokens.accessToken) : "api-key")))
const statusOf = (principal: string) =>
  Effect.map(call("GET", "/auth/status", principal), (a) => JSON.parse(a.body) as { principal: string; logins: Array<{ account: string }> })

describe("HostedLogin routes", () => {
  it.effect("a login completes into the store of the principal that started it, and only there", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const done = yield* call("GET", yield* startLogin("alice"), "alice")
      expect(done).toMatchObject({ status: 303, location: "/auth/status" })
      expect(yield* accessTokens("alice")).toHaveLength(1)
      expect(yield* accessTokens("bob")).toEqual([])
      expect((yield* fake.counts).authorizationCode).toBe(1)
      const alice = yield* statusOf("alice")
      expect(alice).toMatchObject({ principal: "alice", logins: [{ provider: "acme", account: "ada@example.test", kind: "oauth" }] })
      expect((yield* statusOf("bob")).logins).toEqual([])
    }).pipe(Effect.provide(layer)))

  it.effect("the status route shows no token", () =>
    Effect.gen(function*() {
      yield* call("GET", yield* startLogin("alice"), "alice")
      const [token] = yield* accessTokens("alice")
      const store = yield* storeOf("alice")
      const [login] = yield* store.list()
      const body = (yield* call("GET", "/auth/status", "alice")).body
      expect(body).not.toContain(token!)
      if (login?._tag === "OAuthCredential") expect(body).not.toContain(Redacted.value(login.tokens.refreshToken!))
    }).pipe(Effect.provide(layer)))

  it.effect("without a principal every route answers 401 and nothing is started or stored", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const callback = yield* startLogin("alice")
      for (const [method, path] of [["GET", "/auth/login/acme"], ["GET", callback], ["POST", "/auth/logout/acme"], ["GET", "/auth/status"]] as const) {
        const answer = yield* call(method, path)
        expect(answer.status, `${method} ${path}`).toBe(401)
        expect(JSON.parse(answer.body).error).toBe("Unauthenticated")
      }
      expect((yield* fake.counts).authorizationCode).toBe(0)
      // The state was not spent by the unauthenticated callback: alice still completes.
      expect((yield* call("GET", callback, "alice")).status).toBe(303)
    }).pipe(Effect.provide(layer)))

  it.effect("a principal no store accepts counts as none", () =>
    Effect.gen(function*() {
      for (const name of ["", "a\tb", "x".repeat(257)]) {
        expect((yield* call("GET", "/auth/status", name)).status).toBe(401)
      }
    }).pipe(Effect.provide(layer)))

  it.effect("bob cannot complete alice's login: refused, the state is spent, no store gets tokens", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const callback = yield* startLogin("alice")
      const stolen = yield* call("GET", callback, "bob")
      expect(stolen.status).toBe(403)
      expect(JSON.parse(stolen.body)).toMatchObject({ error: "SignInRefused" })
      expect(JSON.parse(stolen.body).message).toContain("started by another user")
      // Spent: not even alice can use a link that went astray.
      const after = yield* call("GET", callback, "alice")
      expect(after.status).toBe(400)
      expect(JSON.parse(after.body).message).toContain("unknown or was already used")
      expect(yield* accessTokens("alice")).toEqual([])
      expect(yield* accessTokens("bob")).toEqual([])
      expect((yield* fake.counts).authorizationCode).toBe(0)
    }).pipe(Effect.provide(layer)))

  it.effect("bob signing in to the same provider account does not overwrite alice's row", () =>
    Effect.gen(function*() {
      yield* call("GET", yield* startLogin("alice"), "alice")
      const aliceBefore = yield* accessTokens("alice")
      // The same person at the provider, so the same account name: only the principal differs.
      yield* call("GET", yield* startLogin("bob"), "bob")
      const bob = yield* accessTokens("bob")
      expect(bob).toHaveLength(1)
      expect(bob).not.toEqual(aliceBefore)
      expect(yield* accessTokens("alice")).toEqual(aliceBefore)
    }).pipe(Effect.provide(layer)))

  it.effect("bob's logout removes bob's login and leaves alice's", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      yield* call("GET", yield* startLogin("alice"), "alice")
      yield* call("GET", yield* startLogin("bob"), "bob")
      const [aliceToken] = yield* accessTokens("alice")
      const out = yield* call("POST", "/auth/logout/acme", "bob")
      expect(out).toMatchObject({ status: 303, location: "/auth/status" })
      expect(yield* accessTokens("bob")).toEqual([])
      expect(yield* accessTokens("alice")).toEqual([aliceToken])
      // Bob's grant was revoked at the provider, alice's still works there.
      expect(yield* fake.isActive(aliceToken!)).toBe(true)
      expect((yield* fake.counts).revocation).toBe(1)
      // Logging out where nothing is stored touches nothing.
      expect((yield* call("POST", "/auth/logout/acme", "carol")).status).toBe(303)
      expect(yield* accessTokens("alice")).toEqual([aliceToken])
    }).pipe(Effect.provide(layer)))

  it.effect("a callback used once is refused the second time; one code exchange", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAuthServer.FakeAuthServer
      const callback = yield* startLogin("alice")
      expect((yield* call("GET", callback, "alice")).status).toBe(303)
      const replay = yield* call("GET", callback, "alice")
      expect(replay.status).toBe(400)
      expect(JSON.parse(replay.body).error).toBe("SignInRefused")
      expect((yield* fake.counts).authorizationCode).toBe(1)
    }).pipe(Effect.provide(layer)))

  it.effect("a callback after the pending login's time to live is refused as expired", () =>
    Effect.gen(function*() {
      const begin = Effect.map(call("GET", "/auth/login/acme", "alice"), (a) => a.location!)
      const late = yield* begin
      const onTime = yield* begin
      // The person takes 4 minutes at the provider (whose codes live a minute, so they are issued after).
      yield* TestClock.adjust("4 minutes")
      expect((yield* call("GET", callbackPath(yield* authorize(onTime)), "alice")).status).toBe(303)
      yield* TestClock.adjust("1 minute")
      const answer = yield* call("GET", callbackPath(yield* authorize(late)), "alice")
      expect(answer.status).toBe(400)
      expect(JSON.parse(answer.body).message).toContain("expired")
      expect(yield* accessTokens("alice")).toHaveLength(1)
    }).pipe(Effect.provide(layer)))

  it.effect("a callback with a forged or missing state is refused and stores nothing", () =>
    Effect.gen(function*() {
      const callback = new URL(yield* startLogin("alice"), PUBLIC)
      callback.searchParams.set("state", "forged")
      expect((yield* call("GET", `${callback.pathname}${callback.search}`, "alice")).status).toBe(400)
      callback.searchParams.delete("state")
      expect((yield* call("GET", `${callback.pathname}${callback.search}`, "alice")).status).toBe(400)
      expect(yield* accessTokens("alice")).toEqual([])
    }).pipe(Effect.provide(layer)))

  it.effect("an unknown provider is 404, and the routes name it", () =>
    Effect.gen(function*() {
      const answer = yield* call("GET", "/auth/login/nope", "alice")
      expect(answer.status).toBe(404)
      expect(JSON.parse(answer.body).message).toContain("\"nope\"")
    }).pipe(Effect.provide(layer)))

  it.effect("each principal has a store of its own", () =>
    Effect.gen(function*() {
      const a = yield* storeOf("alice")
      expect(a).toBe(yield* storeOf("alice"))
      expect(a).not.toBe(yield* storeOf("bob"))
    }).pipe(Effect.provide(layer)))
})
