/**
 * `McpAuth.fetch`'s hot path, on the TestClock: the login it last used is reused from memory
 * (no store read) while fresh and read less than `REVALIDATE_MILLIS` ago; a 401 or 403 on it
 * goes through the full rules from that answer. The server is a fetch stub that accepts the
 * token the test says is current; the store is a memory store that counts its reads.
 */
import { AuthConfig, Domain, ProviderRegistry, Refresher, TokenStore } from "@agent-auth/core"
import { McpAuth, McpServers } from "@agent-auth/mcp"
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { DateTime, type Duration, Effect, Layer, Redacted, TestClock } from "effect"

const url = "https://mcp.example/mcp"
const name = "srv"
const key = { provider: name, account: "default" }

const servers: McpServers.McpFile = {
  version: 1,
  servers: {
    [name]: {
      url,
      issuer: "https://as.example",
      resource: url,
      scopes: [],
      clientId: "client",
      tokenEndpointAuthMethod: "none",
      client: "configured"
    }
  },
  registrations: {}
}

/** The store's reads, counted: the witness that the hot path reads nothing. */
const reads = { count: 0 }
const countingStore = Layer.effect(
  TokenStore.TokenStore,
  Effect.map(TokenStore.makeMemory, (store) => ({
    ...store,
    get: (k: Domain.CredentialKey) => Effect.suspend(() => (reads.count++, store.get(k)))
  }))
)

const layer = (() => {
  const base = Layer.mergeAll(AuthConfig.layerWith({ home: "/mcp-auth-test" }), countingStore, FetchHttpClient.layer)
  const registry = ProviderRegistry.layer.pipe(Layer.provideMerge(McpServers.layerMemory(servers).pipe(Layer.provideMerge(base))))
  return McpAuth.layerService.pipe(Layer.provideMerge(Refresher.layer.pipe(Layer.provideMerge(registry))))
})()

const login = (token: string, lifetime: Duration.DurationInput = "1 hour") =>
  Effect.map(DateTime.now, (now) =>
    Domain.OAuthCredential.make({
      provider: name,
      account: "default",
      tokens: Domain.TokenSet.make({
        accessToken: Redacted.make(token),
        refreshToken: Redacted.make("refresh"),
        expiresAt: DateTime.addDuration(now, lifetime),
        scopes: [],
        tokenType: "Bearer"
      }),
      claims: Domain.AccountClaims.make({}),
      obtainedAt: now
    }))

/** A server accepting only `accepted.token`; every Authorization header it saw, in order. */
const server = () => {
  const accepted = { token: "" }
  const seen: Array<string> = []
  const fetch: typeof globalThis.fetch = (_input, init) => {
    const authorization = new Headers(init?.headers).get("authorization") ?? ""
    seen.push(authorization)
    return Promise.resolve(
      authorization === `Bearer ${accepted.token}` ? new Response("{}") : new Response(null, { status: 401 })
    )
  }
  return { accepted, seen, fetch }
}

/** A login "a" stored (with `lifetime`), a server accepting it, and a fetch for it. */
const setUp = (lifetime?: Duration.DurationInput) =>
  Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    yield* store.set(yield* login("a", lifetime))
    const mcp = server()
    mcp.accepted.token = "a"
    const f = yield* (yield* McpAuth.McpAuth).fetch(url, { fetch: mcp.fetch })
    return { store, mcp, f }
  })

const post = (f: typeof globalThis.fetch) => Effect.promise(() => f(url, { method: "POST", body: "{}" }).then((r) => r.status))

describe("McpAuth.fetch: the hot path", () => {
  it.effect("100 requests within a second read the store once; the next second, once more", () =>
    Effect.gen(function*() {
      const { mcp, f } = yield* setUp()
      reads.count = 0
      for (let i = 0; i < 100; i++) expect(yield* post(f)).toBe(200)
      expect(reads.count).toBe(1)
      yield* TestClock.adjust(McpAuth.REVALIDATE_MILLIS)
      expect(yield* post(f)).toBe(200)
      expect(reads.count).toBe(2)
      expect(new Set(mcp.seen)).toEqual(new Set(["Bearer a"]))
    }).pipe(Effect.provide(layer)))

  it.effect("a logout in another process is seen within a second: then NotLoggedIn naming the command", () =>
    Effect.gen(function*() {
      const { store, mcp, f } = yield* setUp()
      expect(yield* post(f)).toBe(200)
      yield* store.remove(key)
      yield* TestClock.adjust(McpAuth.REVALIDATE_MILLIS - 1)
      expect(yield* post(f)).toBe(200)
      yield* TestClock.adjust(1)
      const error = yield* Effect.flip(Effect.tryPromise({ try: () => f(url, { method: "POST", body: "{}" }), catch: (e) => e }))
      expect(error).toMatchObject({ _tag: "NotLoggedIn", command: `agent-auth mcp login ${url}` })
      expect(mcp.seen).toHaveLength(2)
    }).pipe(Effect.provide(layer)))

  it.effect("a 401 on the hot path: the full rules from that answer (tokens another process stored), then those are reused", () =>
    Effect.gen(function*() {
      const { store, mcp, f } = yield* setUp()
      expect(yield* post(f)).toBe(200)
      // Another process refreshed: the server now accepts only its token.
      yield* store.set(yield* login("b"))
      mcp.accepted.token = "b"
      expect(yield* post(f)).toBe(200)
      // The forced refresh found "b" under the store's lock (there is no AS here to refresh at).
      expect(mcp.seen).toEqual(["Bearer a", "Bearer a", "Bearer b"])
      reads.count = 0
      expect(yield* post(f)).toBe(200)
      expect(reads.count).toBe(0)
      expect(mcp.seen.at(-1)).toBe("Bearer b")
    }).pipe(Effect.provide(layer)))

  it.effect("a token past its refresh margin is not reused from memory, even within the second", () =>
    Effect.gen(function*() {
      // A 1-second token: due at half its lifetime, 500 ms from now.
      const { store, mcp, f } = yield* setUp("1 second")
      expect(yield* post(f)).toBe(200)
      yield* TestClock.adjust(600)
      // Another process refreshed it meanwhile.
      yield* store.set(yield* login("b"))
      mcp.accepted.token = "b"
      reads.count = 0
      expect(yield* post(f)).toBe(200)
      expect(reads.count).toBe(1)
      expect(mcp.seen).toEqual(["Bearer a", "Bearer b"])
    }).pipe(Effect.provide(layer)))
})
