/**
 * Hardening, what arrives over the wire from a provider (DESIGN.md, security rules):
 * - discovered metadata naming a plain-http endpoint is refused, naming the field;
 * - a redirect from an endpoint that receives a secret (token, revocation, device, model
 *   API) is refused, not followed: a second loopback server, where the redirect points,
 *   receives nothing, and the stored login is byte-for-byte what it was;
 * - an answer larger than 1 MiB is refused with a typed error, read no further than that.
 * Real sockets and `fetch` (FetchHttpClient), the way a Node program runs.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import {
  AuthConfig,
  AuthHttpClient,
  CredentialResolver,
  DeviceFlow,
  JwtVerifier,
  ProviderRegistry,
  Refresher,
  Revoker,
  SecureRandom
} from "@agent-auth/core"
import { NodeTokenStore } from "@agent-auth/node"
import { FakeAuthServer } from "@agent-auth/testing"
import { afterAll, beforeAll, expect } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { huge, redirector, type Served, thief } from "./support/hostile.js"
import { account, readCredentials, seedIssued } from "./support/seed.js"
import { area } from "./support/table.js"

const homes: Array<string> = []
let fake: FakeAuthServer.FakeAuthServerShape
let close: () => Promise<void>
let b: Served
let a: Served
let big: Served

// One fake issuer (real socket) for the file, the thief, the redirector in front of it, and the huge-body server.
beforeAll(async () => {
  const { Scope } = await import("effect")
  const scope = await Effect.runPromise(Scope.make())
  fake = await Effect.runPromise(Scope.extend(FakeAuthServer.make({}), scope))
  close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  b = await thief()
  a = await redirector(b.origin)
  big = await huge(2 * 1024 * 1024)
})

afterAll(async () => {
  await close?.()
  await Promise.all([a?.close(), b?.close(), big?.close()])
  homes.forEach((h) => fs.rmSync(h, { recursive: true, force: true }))
})

const newHome = () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-hardening-wire-"))
  homes.push(home)
  return home
}

/** The real services over `fetch`, the file store in `home`, and `acme` at the fake issuer with `extra` on top. */
const services = (home: string, extra: Record<string, unknown>, file: Partial<AuthConfig.ConfigFile> = {}) => {
  const config = AuthConfig.layerWith({
    home,
    file: {
      providers: {
        acme: { kind: "oidc", issuer: fake.issuer, clientId: FakeAuthServer.defaultClientId, apiBaseUrl: `${fake.issuer}/v1`, ...extra },
        ...file.providers
      },
      ...(file.apiKeys === undefined ? {} : { apiKeys: file.apiKeys })
    }
  })
  const base = Layer.mergeAll(
    NodeTokenStore.layerFile.pipe(Layer.provide(NodeFileSystem.layer)),
    SecureRandom.layer
  ).pipe(Layer.provideMerge(Layer.mergeAll(config, FetchHttpClient.layer)))
  const stage1 = Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
  // The product's retry bound, with short pauses: a transient fault would be retried, a refused answer is not.
  const stage2 = Refresher.layerWith({ retry: { base: "5 millis", maxDelay: "20 millis" } }).pipe(Layer.provideMerge(stage1))
  return Layer.mergeAll(CredentialResolver.layer, Revoker.layer, DeviceFlow.layer).pipe(Layer.provideMerge(stage2))
}

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const messageOf = (e: unknown): string => (e as { message?: string } | undefined)?.message ?? String(e)

const wire = area("provider answers", import.meta.url)

// ---------------------------------------------------------------- discovery

const discoveryKinds = [
  "authorization_endpoint",
  "token_endpoint",
  "revocation_endpoint",
  "device_authorization_endpoint",
  "jwks_uri"
] as const

for (const field of discoveryKinds) {
  wire.effect(`discovery: ${field} over plain http`, "refused", (t) =>
    Effect.gen(function*() {
      const issuer = "https://login.acme.example"
      const doc: Record<string, string> = {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        revocation_endpoint: `${issuer}/revoke`,
        device_authorization_endpoint: `${issuer}/device`,
        jwks_uri: `${issuer}/jwks`
      }
      const clear = `http://login.acme.example/${field}`
      doc[field] = clear
      const client = HttpClient.make((request) =>
        Effect.succeed(HttpClientResponse.fromWeb(request, new Response(JSON.stringify(doc), { headers: { "content-type": "application/json" } })))
      )
      const exit = yield* Effect.exit(ProviderRegistry.discover(issuer).pipe(Effect.provideService(HttpClient.HttpClient, client)))
      const e = failureOf(exit)
      expect(e?._tag).toBe("DiscoveryError")
      expect(messageOf(e)).toContain(field)
      expect(messageOf(e)).toContain(clear)
      expect(messageOf(e)).toContain("https")
      t.note(`DiscoveryError naming ${field} and ${clear}`)
    }))
}

// ---------------------------------------------------------------- redirects

/** A stored login, the file's text before, and the services with `endpoints` pointing at the redirector. */
const redirected = (status: number, endpoints: Record<string, string>, extra: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const home = newHome()
    yield* Effect.promise(() => seedIssued(home, fake))
    const before = readCredentials(home)
    const hitsBefore = b.received.length
    const redirectsBefore = a.received.length
    const prefixed = Object.fromEntries(Object.entries(endpoints).map(([k, p]) => [k, `${a.origin}/${status}${p}`]))
    return {
      home,
      before,
      layer: services(home, { endpoints: prefixed, ...extra }),
      thiefHits: () => b.received.length - hitsBefore,
      redirects: () => a.received.length - redirectsBefore
    }
  })

for (const status of [302, 307, 308]) {
  wire.live(`token endpoint answers ${status} to a refresh`, "refused", (t) =>
    Effect.gen(function*() {
      const r = yield* redirected(status, { token: "/oauth/token" })
      const exit = yield* Effect.exit(
        Effect.flatMap(Refresher.Refresher, (refresher) => refresher.fresh({ provider: "acme", account }, { force: true })).pipe(
          Effect.provide(r.layer)
        )
      )
      const e = failureOf(exit)
      expect(e?._tag).toBe("NetworkError")
      expect(messageOf(e)).toContain(`HTTP ${status}`)
      expect(messageOf(e)).toContain("not followed")
      // Final, not transient: another try would be redirected the same way.
      expect(r.redirects()).toBe(1)
      expect(r.thiefHits()).toBe(0)
      expect(readCredentials(r.home)).toBe(r.before)
      t.note(`1 refresh redirected and not retried, 0 reached the other server, login unchanged`)
    }))

  wire.live(`revocation endpoint answers ${status} to a logout`, "refused", (t) =>
    Effect.gen(function*() {
      const r = yield* redirected(status, { revocation: "/oauth/revoke" })
      const result = yield* Effect.flatMap(Revoker.Revoker, (revoker) => revoker.logout({ provider: "acme", account })).pipe(
        Effect.provide(r.layer)
      )
      expect(result.revocation._tag).toBe("Failed")
      expect(result.revocation._tag === "Failed" && result.revocation.reason).toContain("not followed")
      expect(result.removed).toBe(true)
      expect(r.redirects()).toBe(1)
      expect(r.thiefHits()).toBe(0)
      t.note(`revocation Failed ("not followed"), 0 reached the other server, deleted locally`)
    }))

  wire.live(`device authorization endpoint answers ${status}`, "refused", (t) =>
    Effect.gen(function*() {
      const r = yield* redirected(status, { deviceAuthorization: "/device/code" })
      const exit = yield* Effect.exit(
        Effect.flatMap(DeviceFlow.DeviceFlow, (device) => device.login("acme")).pipe(Effect.provide(r.layer))
      )
      const e = failureOf(exit)
      expect(e?._tag).toBe("NetworkError")
      expect(messageOf(e)).toContain("not followed")
      expect(r.thiefHits()).toBe(0)
      expect(readCredentials(r.home)).toBe(r.before)
      t.note(`NetworkError, 0 reached the other server, login unchanged`)
    }))

  wire.live(`model API answers ${status} to a bearer call`, "refused", (t) =>
    Effect.gen(function*() {
      const r = yield* redirected(status, {}, { apiBaseUrl: `${a.origin}/${status}/v1` })
      const exit = yield* Effect.exit(
        Effect.flatMap(AuthHttpClient.make("acme"), (client) => client.execute(HttpClientRequest.post("/responses"))).pipe(
          Effect.provide(r.layer)
        )
      )
      const e = failureOf(exit)
      expect(e?._tag).toBe("NetworkError")
      expect(messageOf(e)).toContain("not followed")
      expect(r.redirects()).toBe(1)
      expect(a.received.at(-1)?.headers.authorization).toMatch(/^Bearer /)
      expect(r.thiefHits()).toBe(0)
      expect(readCredentials(r.home)).toBe(r.before)
      t.note(`NetworkError, 0 reached the other server, login unchanged`)
    }))

  wire.live(`model API answers ${status} to an x-api-key call`, "refused", (t) =>
    Effect.gen(function*() {
      const home = newHome()
      const key = `sk-ant-canary-${status}-7f3a9c1e5b2d4a6f`
      const hits = b.received.length
      const layer = services(home, {}, {
        providers: { anthropic: { apiKeyBaseUrl: `${a.origin}/${status}` } },
        apiKeys: { anthropic: Redacted.make(key) }
      })
      const exit = yield* Effect.exit(
        Effect.flatMap(AuthHttpClient.make("anthropic"), (client) => client.execute(HttpClientRequest.post("/v1/messages"))).pipe(
          Effect.provide(layer)
        )
      )
      expect(failureOf(exit)?._tag).toBe("NetworkError")
      expect(a.received.at(-1)?.headers["x-api-key"]).toBe(key)
      expect(b.received.length - hits).toBe(0)
      t.note(`x-api-key sent to its origin only; NetworkError, 0 reached the other server`)
    }))
}

wire.live("x-api-key on a request to another origin", "refused", (t) =>
  Effect.gen(function*() {
    const home = newHome()
    const key = "sk-ant-canary-origin-7f3a9c1e5b2d4a6f"
    const hits = b.received.length
    const layer = services(home, {}, {
      providers: { anthropic: { apiKeyBaseUrl: `${a.origin}/v1` } },
      apiKeys: { anthropic: Redacted.make(key) }
    })
    const response = yield* Effect.flatMap(
      AuthHttpClient.make("anthropic"),
      (client) => client.execute(HttpClientRequest.get(`${b.origin}/v1/models`))
    ).pipe(Effect.provide(layer))
    expect(response.status).toBe(200)
    expect(b.received.length - hits).toBe(1)
    const got = b.received.at(-1)!
    expect(got.headers["x-api-key"]).toBeUndefined()
    expect(JSON.stringify(got.headers)).not.toContain(key)
    t.note("the other origin got the request without x-api-key (or any piece of the key)")
  }))

// ---------------------------------------------------------------- body bounds

const tooLarge = (title: string, run: (home: string, bigUrl: (p: string) => string) => Effect.Effect<unknown, unknown>, tag: string) =>
  wire.live(title, "refused", (t) =>
    Effect.gen(function*() {
      const home = newHome()
      const exit = yield* Effect.exit(run(home, (p) => `${big.origin}${p}`))
      const e = failureOf(exit)
      expect(e === undefined ? undefined : (e as { _tag: string })._tag).toBe(tag)
      expect(messageOf(e)).toContain("larger than 1 MiB")
      t.note(`${tag}: "larger than 1 MiB; it was not read"`)
    }))

const refreshVia = (token: string) => (home: string) =>
  Effect.gen(function*() {
    yield* Effect.promise(() => seedIssued(home, fake))
    const before = readCredentials(home)
    const requests = big.received.length
    const exit = yield* Effect.exit(
      Effect.flatMap(Refresher.Refresher, (r) => r.fresh({ provider: "acme", account }, { force: true })).pipe(
        Effect.provide(services(home, { endpoints: { token } }))
      )
    )
    expect(readCredentials(home)).toBe(before)
    // Final, not transient: the same answer would come again.
    expect(big.received.length - requests).toBe(1)
    return yield* exit
  })

tooLarge("token answer of 2 MiB (with Content-Length)", (home, url) => refreshVia(url("/token"))(home), "NetworkError")
tooLarge("token answer of 2 MiB (chunked, no Content-Length)", (home, url) => refreshVia(url("/chunked/token"))(home), "NetworkError")

tooLarge("device authorization answer of 2 MiB", (home, url) =>
  Effect.flatMap(DeviceFlow.DeviceFlow, (d) => d.login("acme")).pipe(
    Effect.provide(services(home, { endpoints: { deviceAuthorization: url("/chunked/device") } }))
  ), "NetworkError")

tooLarge("discovery document of 2 MiB", (_home, url) =>
  ProviderRegistry.discover(url("/chunked")).pipe(Effect.provide(FetchHttpClient.layer)), "DiscoveryError")

tooLarge("JWKS of 2 MiB", (_home, url) =>
  Effect.flatMap(JwtVerifier.JwtVerifier, (v) =>
    v.verify(Redacted.make("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJ4In0.c2ln"), {
      issuer: fake.issuer,
      jwksUri: url("/chunked/jwks"),
      clientId: FakeAuthServer.defaultClientId
    })).pipe(Effect.provide(JwtVerifier.layer), Effect.provide(FetchHttpClient.layer)), "JwtInvalid")

wire.live("revocation answer of 2 MiB", "refused", (t) =>
  Effect.gen(function*() {
    const home = newHome()
    yield* Effect.promise(() => seedIssued(home, fake))
    const result = yield* Effect.flatMap(Revoker.Revoker, (r) => r.logout({ provider: "acme", account })).pipe(
      Effect.provide(services(home, { endpoints: { revocation: `${big.origin}/chunked/revoke` } }))
    )
    expect(result.revocation._tag === "Failed" && result.revocation.reason).toContain("larger than 1 MiB")
    expect(result.removed).toBe(true)
    t.note(`revocation Failed ("larger than 1 MiB"), deleted locally`)
  }))
