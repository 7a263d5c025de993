/**
 * Hardening, hosted sign-in: two replicas of a service (each its own connection, pending
 * logins and token stores) on one SQLite database, the routes of `@agent-auth/server`,
 * the in-memory fake authorization server, TestClock. Each case attacks the callback or
 * the stored rows across replicas and checks that nothing was stored for anyone.
 */
import { PendingLogins, PrincipalStores } from "@agent-auth/server"
import { SecretBox, SqlStoreConfig, SqlTokenStore } from "@agent-auth/sql"
import { FakeAuthServer } from "@agent-auth/testing"
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { expect } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, TestClock } from "effect"
import type { Scope } from "effect"
import * as Crypto from "node:crypto"
import { accessTokens, authorize, baseLayer, call, callbackPath, startLogin, type Stores } from "../support/hostedRoutes.js"
import { area } from "./support/table.js"

const hosted = area("hosted sign-in", import.meta.url)

const KEY = Redacted.make(new Uint8Array(Crypto.randomBytes(32)))

type Replica = Context.Context<Stores | SqlClient.SqlClient>

/** Two replicas on one new SQLite file; `key` is the second one's (the first uses KEY). */
const twoReplicas = (key = KEY) =>
  Effect.gen(function*() {
    const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
    const config = yield* SqlStoreConfig.make({ kind: "sqlite", url: `file:${dir}/hosted.db` })
    const replica = (k: typeof KEY) =>
      Layer.build(
        Layer.mergeAll(
          PendingLogins.layerSql({ location: config.location }),
          PrincipalStores.layerSql.pipe(Layer.provide(SqlTokenStore.layerStores({ location: config.location })))
        ).pipe(Layer.provideMerge(SqlStoreConfig.layerClient(config)), Layer.provide(SecretBox.layer(k)))
      )
    const one: Replica = yield* replica(KEY)
    const two: Replica = yield* replica(key)
    return { one, two }
  }).pipe(Effect.provide(NodeFileSystem.layer))

const on = <A, E, R>(replica: Replica, effect: Effect.Effect<A, E, R>) => Effect.provide(effect, replica)

/** Nobody got tokens: neither principal's store holds any, and the provider exchanged no code. */
const nothingStored = (replicas: { one: Replica; two: Replica }, ...principals: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    for (const p of principals) expect(yield* on(replicas.two, accessTokens(p))).toEqual([])
    expect((yield* (yield* FakeAuthServer.FakeAuthServer).counts).authorizationCode).toBe(0)
  })

const run = <A, E>(body: Effect.Effect<A, E, Layer.Layer.Success<typeof baseLayer> | Scope.Scope>) =>
  body.pipe(Effect.provide(baseLayer), Effect.scoped)

hosted.effect("a forged state on the other replica", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas()
    const callback = new URL(yield* on(r.one, startLogin("alice")), "https://x")
    callback.searchParams.set("state", "forged-state-0000000000000000000000000000000")
    const answer = yield* on(r.two, call("GET", `${callback.pathname}${callback.search}`, "alice"))
    expect(answer.status).toBe(400)
    yield* nothingStored(r, "alice")
    t.note("HTTP 400 SignInRefused (unknown); no code exchanged")
  })))

hosted.effect("the same callback on both replicas at once", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas()
    const callback = yield* on(r.one, startLogin("alice"))
    const [a, b] = yield* Effect.all([on(r.one, call("GET", callback, "alice")), on(r.two, call("GET", callback, "alice"))], {
      concurrency: "unbounded"
    })
    expect([a.status, b.status].sort()).toEqual([303, 400])
    expect((yield* (yield* FakeAuthServer.FakeAuthServer).counts).authorizationCode).toBe(1)
    expect(yield* on(r.one, accessTokens("alice"))).toHaveLength(1)
    t.note("one 303, one 400; one code exchange")
  })))

hosted.effect("a callback replayed on the other replica after success", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas()
    const callback = yield* on(r.one, startLogin("alice"))
    expect((yield* on(r.one, call("GET", callback, "alice"))).status).toBe(303)
    const tokens = yield* on(r.two, accessTokens("alice"))
    expect((yield* on(r.two, call("GET", callback, "alice"))).status).toBe(400)
    expect(yield* on(r.two, accessTokens("alice"))).toEqual(tokens)
    t.note("HTTP 400; the stored login unchanged")
  })))

hosted.effect("a login link opened by another principal (login CSRF / account mix-up)", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas()
    const callback = yield* on(r.one, startLogin("mallory"))
    const answer = yield* on(r.two, call("GET", callback, "victim"))
    expect(answer.status).toBe(403)
    expect((yield* on(r.one, call("GET", callback, "mallory"))).status).toBe(400)
    yield* nothingStored(r, "mallory", "victim")
    t.note("HTTP 403, the state spent; nothing stored for either")
  })))

hosted.effect("a callback after the time to live, on the other replica", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas()
    const started = yield* on(r.one, call("GET", "/auth/login/acme", "alice"))
    yield* TestClock.adjust("5 minutes")
    const answer = yield* on(r.two, call("GET", callbackPath(yield* authorize(started.location!)), "alice"))
    expect(answer.status).toBe(400)
    expect(JSON.parse(answer.body).message).toContain("expired")
    yield* nothingStored(r, "alice")
    t.note("HTTP 400 (expired) at exactly the time to live (TestClock)")
  })))

hosted.effect("a pending row edited in the database to name the attacker", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas()
    const callback = yield* on(r.one, startLogin("alice"))
    const sql = Context.get(r.one, SqlClient.SqlClient)
    yield* sql`UPDATE agent_auth_pending_logins SET principal = 'mallory'`
    const answer = yield* on(r.two, call("GET", callback, "mallory"))
    expect(answer.status).toBe(500)
    expect(JSON.parse(answer.body).error).toBe("StoreKeyRejected")
    yield* nothingStored(r, "alice", "mallory")
    t.note("the sealed secrets do not open for another principal (StoreKeyRejected)")
  })))

hosted.effect("a replica with another encryption key", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas(Redacted.make(new Uint8Array(Crypto.randomBytes(32))))
    const callback = yield* on(r.one, startLogin("alice"))
    const answer = yield* on(r.two, call("GET", callback, "alice"))
    expect(JSON.parse(answer.body)).toMatchObject({ error: "StoreKeyRejected" })
    expect(JSON.parse(answer.body).message).toContain("AGENT_AUTH_ENCRYPTION_KEY")
    yield* nothingStored(r, "alice")
    t.note("StoreKeyRejected naming AGENT_AUTH_ENCRYPTION_KEY")
  })))

hosted.effect("requests without a principal, or with one no store accepts", "refused", (t) =>
  run(Effect.gen(function*() {
    const r = yield* twoReplicas()
    const statuses: Array<number> = []
    for (const who of [undefined, "", "a\tb", "x".repeat(257)]) {
      for (const [method, path] of [["GET", "/auth/login/acme"], ["GET", "/auth/status"], ["POST", "/auth/logout/acme"]] as const) {
        statuses.push((yield* on(r.one, call(method, path, who))).status)
      }
    }
    expect(new Set(statuses)).toEqual(new Set([401]))
    // Nothing was started: no pending login, no visit to the provider.
    const sql = Context.get(r.one, SqlClient.SqlClient)
    expect(yield* sql`SELECT state_hash FROM agent_auth_pending_logins`).toEqual([])
    expect((yield* (yield* FakeAuthServer.FakeAuthServer).counts).authorize).toBe(0)
    t.note(`${statuses.length} requests, all HTTP 401; no pending login saved`)
  })))
