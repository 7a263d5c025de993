/**
 * The hosted sign-in routes end to end against the in-memory fake authorization server,
 * under TestClock, with two principals (alice, bob) named by a header: a login completes
 * into the right principal's store, and neither principal can read, complete, overwrite or
 * log out the other's logins through the routes.
 */
import { PendingLogins, PrincipalStores } from "@agent-auth/server"
import { FakeAuthServer } from "@agent-auth/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, TestClock } from "effect"
import { accessTokens, authorize, baseLayer, call, callbackPath, PUBLIC, startLogin, statusOf, storeOf } from "./support/hostedRoutes.js"

const layer = Layer.mergeAll(PendingLogins.layerMemory, PrincipalStores.layerMemory).pipe(Layer.provideMerge(baseLayer))

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
