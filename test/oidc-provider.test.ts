/**
 * agent-auth against a real authorization server: panva's oidc-provider, in-process on
 * 127.0.0.1 (test/support/oidcProvider.ts), its login, consent and device pages driven over
 * HTTP by a small browser (test/support/browser.ts). Our fake server can only agree with
 * our own reading of the RFCs; this one is certified.
 *
 * In-process (core services, TestClock): discovery, RFC 9207 `iss`, ID-token verification
 * across a key rotation. As a user runs it (the built CLI bundle, one process per command):
 * login → status → token → refresh → logout, device login, 8 processes at once, and a
 * replayed refresh token.
 *
 * This server never sends `slow_down` (nor an `interval`: polling runs at our 5 s default)
 * and device codes here do not expire during a test; `slow_down` and `expired_token` are
 * covered against our own stub in test/flows.test.ts and packages/testing.
 */
import {
  AuthConfig,
  AuthorizationDenied,
  DiscoveryError,
  JwtInvalid,
  JwtVerifier,
  PkceFlow,
  ProviderRegistry,
  Refresher,
  SecureRandom,
  TokenStore
} from "@agent-auth/core"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer, Redacted, Ref, TestClock } from "effect"
import { decodeProtectedHeader } from "jose"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { Browser } from "./support/browser.js"
import { cliEnv, type CliResult, finish, nextEvent, run, start, tempHome } from "./support/cli.js"
import {
  ACCESS_TOKEN_TTL,
  CLIENT_ID,
  MINUTE_CLIENT_ID,
  type OidcServer,
  SHORT_ACCESS_TOKEN_TTL,
  SHORT_CLIENT_ID,
  startOidcProvider
} from "./support/oidcProvider.js"

const PROVIDER = "op"
const USER = "alice"
const EMAIL = `${USER}@example.test`
/** What a person types into the server's pages (dev interactions take any login and password). */
const typed = { login: USER, password: "any-password" }
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

let server: OidcServer
const homes: Array<string> = []

beforeAll(async () => {
  server = await startOidcProvider()
})
afterAll(async () => {
  await server?.close()
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true })
})

/** config.json's entry for the server: an `oidc` provider, as a user would add it. */
const providerEntry = (clientId: string, issuer = server.issuer): AuthConfig.ProviderOverride => ({
  kind: "oidc",
  issuer,
  clientId,
  scopes: ["openid", "offline_access", "email"],
  // oidc-provider drops offline_access (so issues no refresh token) unless consent is prompted.
  authorizeParams: { prompt: "consent" },
  apiBaseUrl: "https://llm.example.test/v1"
})

// ---------------------------------------------------------------------------------------
// In-process: the core services over a real HttpClient, time from TestClock.

const servicesLayer = (issuer = server.issuer, store: Layer.Layer<TokenStore.TokenStore> = TokenStore.layerMemory) => {
  const base = Layer.mergeAll(
    AuthConfig.layerWith({ home: "/test-home", file: { providers: { [PROVIDER]: providerEntry(CLIENT_ID, issuer) } } }),
    store,
    SecureRandom.layer,
    FetchHttpClient.layer
  )
  const stage1 = Layer.mergeAll(ProviderRegistry.layer, JwtVerifier.layer).pipe(Layer.provideMerge(base))
  return PkceFlow.layer.pipe(Layer.provideMerge(stage1))
}

/** ID tokens carry real timestamps: start the TestClock at the real time. */
const atRealTime = Effect.suspend(() => TestClock.setTime(Date.now()))

/** Any port: the browser stops at the redirect and never requests it. */
const REDIRECT_URI = "http://127.0.0.1:49999/callback"

/** Start a login and sign in at the server; the redirect back to us, as the browser saw it. */
const authorize = Effect.gen(function*() {
  const flow = yield* PkceFlow.PkceFlow
  const pending = yield* flow.start(PROVIDER, { redirectUri: REDIRECT_URI })
  const visit = yield* Effect.promise(() =>
    new Browser().navigate(pending.authorizationUrl, { fields: typed, stopAt: (url) => url.startsWith(REDIRECT_URI) })
  )
  expect(visit.status, visit.trail.join("\n")).toBeUndefined()
  return { pending, callback: new URL(visit.url) }
})

/** The callback's parameters; `iss` replaced when `override` is given (`{ iss: undefined }` drops it). */
const inputOf = (callback: URL, override?: { readonly iss: string | undefined }) => ({
  code: Redacted.make(callback.searchParams.get("code") ?? ""),
  state: callback.searchParams.get("state") ?? undefined,
  iss: override === undefined ? callback.searchParams.get("iss") ?? undefined : override.iss
})

describe("oidc-provider, in-process", () => {
  it.effect("discovers the issuer through ProviderRegistry (kind oidc), issuer-equality checked", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const provider = yield* registry.get(PROVIDER)
      expect(provider.kind).toBe("oidc")
      const metadata = yield* registry.metadata(provider)
      expect(metadata).toMatchObject({
        issuer: server.issuer,
        authorization_endpoint: `${server.issuer}/auth`,
        token_endpoint: `${server.issuer}/token`,
        jwks_uri: `${server.issuer}/jwks`,
        revocation_endpoint: `${server.issuer}/token/revocation`,
        device_authorization_endpoint: `${server.issuer}/device/auth`,
        code_challenge_methods_supported: ["S256"],
        authorization_response_iss_parameter_supported: true
      })

      // A document served from another address that names the real issuer (a mix-up) is refused.
      const mirror = http.createServer((req, res) => {
        void fetch(`${server.issuer}${req.url}`).then(async (r) => {
          res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" })
          res.end(await r.text())
        })
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void mirror.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.async<void>((resume) => void mirror.close(() => resume(Effect.void)))
      )
      const mirrorIssuer = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`
      const refused = yield* Effect.gen(function*() {
        const other = yield* ProviderRegistry.ProviderRegistry
        return yield* Effect.either(other.metadata(yield* other.get(PROVIDER)))
      }).pipe(Effect.provide(servicesLayer(mirrorIssuer)))
      expect(Either.isLeft(refused) && refused.left).toBeInstanceOf(DiscoveryError)
      expect(Either.isLeft(refused) && refused.left.message).toContain(`names the issuer "${server.issuer}"`)
    }).pipe(Effect.provide(servicesLayer()), Effect.scoped))

  it.effect("checks RFC 9207 iss on the callback: missing or foreign iss refused, the right one accepted", () =>
    Effect.gen(function*() {
      yield* atRealTime
      const flow = yield* PkceFlow.PkceFlow
      const codesBefore = server.grants("authorization_code")
      const { callback, pending } = yield* authorize
      expect(callback.searchParams.get("iss")).toBe(server.issuer)

      // The server advertises iss, so a redirect without it is refused before any token request.
      const missing = yield* Effect.flip(flow.complete(pending, inputOf(callback, { iss: undefined })))
      expect(missing).toBeInstanceOf(AuthorizationDenied)
      expect(missing).toMatchObject({ error: "issuer_mismatch" })
      const foreign = yield* Effect.flip(flow.complete(pending, inputOf(callback, { iss: "http://127.0.0.1:1" })))
      expect(foreign).toMatchObject({ _tag: "AuthorizationDenied", error: "issuer_mismatch" })
      expect(server.grants("authorization_code")).toBe(codesBefore)

      // The code was never spent, so the genuine redirect still completes the login.
      const login = yield* flow.complete(pending, inputOf(callback))
      expect(server.grants("authorization_code")).toBe(codesBefore + 1)
      expect(login.account).toBe(EMAIL)
      expect(login.claims).toMatchObject({ subject: USER, email: EMAIL })
      expect(login.tokens.refreshToken).toBeDefined()
      expect((yield* (yield* TokenStore.TokenStore).list()).map((c) => c.account)).toEqual([EMAIL])
    }).pipe(Effect.provide(servicesLayer())))

  it.effect("verifies ID tokens against the JWKS; after a key rotation, an unknown kid refetches it (after the cool-down)", () =>
    Effect.gen(function*() {
      yield* atRealTime
      const flow = yield* PkceFlow.PkceFlow
      const complete = Effect.flatMap(authorize, ({ callback, pending }) => flow.complete(pending, inputOf(callback)))
      const kidOf = (login: { readonly tokens: { readonly idToken?: Redacted.Redacted<string> | undefined } }) =>
        decodeProtectedHeader(Redacted.value(login.tokens.idToken!)).kid

      const fetches = server.jwksFetches()
      const first = yield* complete
      const oldKid = server.signingKid()
      expect(kidOf(first)).toBe(oldKid)
      expect(server.jwksFetches()).toBe(fetches + 1)

      yield* Effect.promise(() => server.rotateKeys())
      expect(server.signingKid()).not.toBe(oldKid)

      // Signed with a key our cached set does not hold, within the refetch cool-down: refused.
      const early = yield* Effect.flip(complete)
      expect(early).toBeInstanceOf(JwtInvalid)
      expect(early).toMatchObject({ rule: "kid" })
      expect(server.jwksFetches()).toBe(fetches + 1)

      // Past the cool-down, the unknown kid makes the verifier fetch the JWKS again, once.
      yield* TestClock.adjust("61 seconds")
      const second = yield* complete
      expect(kidOf(second)).toBe(server.signingKid())
      expect(server.jwksFetches()).toBe(fetches + 2)
      expect(second.claims.email).toBe(EMAIL)
    }).pipe(Effect.provide(servicesLayer())))
})

/**
 * A memory store whose `modify` (the critical section) waits at a gate: the test opens it
 * once every caller has read the stored login and queued for the lock.
 */
const gatedStore = (callers: number) =>
  Effect.gen(function*() {
    const inner = yield* TokenStore.makeMemory
    const gate = yield* Deferred.make<void>()
    const allQueued = yield* Deferred.make<void>()
    const queued = yield* Ref.make(0)
    const store: TokenStore.TokenStoreShape = {
      ...inner,
      modify: (key, f) =>
        Ref.updateAndGet(queued, (n) => n + 1).pipe(
          Effect.tap((n) => (n === callers ? Deferred.succeed(allQueued, undefined) : Effect.void)),
          Effect.zipRight(Deferred.await(gate)),
          Effect.zipRight(inner.modify(key, f))
        )
    }
    return { store, open: Deferred.succeed(gate, undefined), allQueued: Deferred.await(allQueued) }
  })

describe("oidc-provider, in-process refresh", () => {
  it.scoped("8 refreshers (8 processes) that all decided to refresh before the lock: one refresh at the server, no replay", () =>
    Effect.gen(function*() {
      yield* atRealTime
      const gated = yield* gatedStore(8)
      yield* Effect.gen(function*() {
        const flow = yield* PkceFlow.PkceFlow
        const { callback, pending } = yield* authorize
        const login = yield* flow.complete(pending, inputOf(callback))
        const key = { provider: PROVIDER, account: login.account }
        // One Refresher each: no in-process single flight between them, only the store's lock.
        const refreshers = yield* Effect.all(Array.from({ length: 8 }, () => Refresher.make()))
        const refreshesBefore = server.grants("refresh_token")
        const revokedBefore = server.revokedGrants()

        const fibers = yield* Effect.forEach(refreshers, (r) => Effect.fork(r.fresh(key, { force: true })))
        // Every one of them read the old tokens and now waits for the lock.
        yield* gated.allQueued
        yield* gated.open
        const results = yield* Fiber.joinAll(fibers)

        // The first spent the refresh token; the 7 others found the tokens changed and fresh, and used them.
        expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
        expect(server.revokedGrants()).toBe(revokedBefore)
        const accessTokens = new Set(results.map((c) => Redacted.value(c.tokens.accessToken)))
        expect(accessTokens.size).toBe(1)
        expect(accessTokens.has(Redacted.value(login.tokens.accessToken))).toBe(false)
        const refreshed = results[0]!.tokens.refreshToken!
        expect(yield* Effect.promise(() => server.introspect(Redacted.value(refreshed), "refresh_token"))).toMatchObject({ active: true })
        expect(yield* Effect.promise(() => server.introspect(Redacted.value(login.tokens.refreshToken!), "refresh_token")))
          .toEqual({ active: false })
      }).pipe(Effect.provide(servicesLayer(server.issuer, Layer.succeed(TokenStore.TokenStore, gated.store))))
    }))
})

// ---------------------------------------------------------------------------------------
// The CLI as a user runs it: the built bundle, one process per command.

interface StoredLogin {
  readonly accessToken: string
  readonly refreshToken: string
  readonly expiresAt: string
}

/** Makes the stored login due now, as if its access token had just expired (the tokens themselves untouched). */
const expireStoredLogin = (home: string) => {
  const file = JSON.parse(fs.readFileSync(credentialsPath(home), "utf8")) as {
    credentials: Array<{ provider: string; tokens: { expiresAt: string } }>
  }
  for (const c of file.credentials) if (c.provider === PROVIDER) c.tokens.expiresAt = new Date(Date.now() - 1_000).toISOString()
  fs.writeFileSync(credentialsPath(home), JSON.stringify(file, null, 2), { mode: 0o600 })
}

const credentialsPath = (home: string) => path.join(home, "credentials.json")

const newHome = (clientId = CLIENT_ID) => {
  const home = tempHome()
  homes.push(home)
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ providers: { [PROVIDER]: providerEntry(clientId) } }))
  return home
}

/** The one login credentials.json holds for the provider. */
const storedLogin = (home: string): StoredLogin => {
  const file = JSON.parse(fs.readFileSync(credentialsPath(home), "utf8")) as {
    credentials: Array<{ provider: string; tokens?: StoredLogin }>
  }
  const logins = file.credentials.filter((c) => c.provider === PROVIDER)
  expect(logins).toHaveLength(1)
  return logins[0]!.tokens!
}

const events = (stdout: string) => stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))

const expectOk = (result: CliResult) => expect(result.code, result.stderr).toBe(0)

/** `login --no-browser --json`; the test signs in at the server's pages, and the browser lands on our loopback callback. */
const cliLogin = async (home: string) => {
  const child = start(["login", PROVIDER, "--no-browser", "--json"], cliEnv(home))
  const done = finish(child)
  const url = await nextEvent(child, "authorization_url")
  const visit = await new Browser().navigate(String(url.url), { fields: typed })
  const result = await done
  return { url, visit, result }
}

/** Runs `n` copies of one command at once. */
const concurrently = (n: number, args: ReadonlyArray<string>, home: string) =>
  Promise.all(Array.from({ length: n }, () => run(args, cliEnv(home))))

describe("oidc-provider, through the agent-auth CLI", () => {
  it("login → status → token (active) → refresh (old refresh token rejected) → logout (grant revoked) → status", async () => {
    const home = newHome()
    const env = cliEnv(home)

    const { result: login, url, visit } = await cliLogin(home)
    expectOk(login)
    expect(String(url.redirect_uri)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
    // The browser ended on our loopback callback, which answered with a page (no code in it).
    expect(visit.url.startsWith(String(url.redirect_uri)), visit.trail.join("\n")).toBe(true)
    expect(visit.status).toBe(200)
    expect(visit.body).not.toContain("code=")
    expect(events(login.stdout).map((e) => e.event)).toEqual(["authorization_url", "logged_in"])
    expect(events(login.stdout)[1]).toMatchObject({ provider: PROVIDER, account: EMAIL })
    const first = storedLogin(home)
    const expiresIn = (Date.parse(first.expiresAt) - Date.now()) / 1000
    expect(expiresIn).toBeGreaterThan(ACCESS_TOKEN_TTL - 120)
    expect(expiresIn).toBeLessThanOrEqual(ACCESS_TOKEN_TTL)

    const status = await run(["status", PROVIDER], env)
    expectOk(status)
    expect(status.stdout).toContain(EMAIL)
    expect(status.stdout + status.stderr).not.toContain(first.accessToken)

    const token = await run(["token", PROVIDER], env)
    expectOk(token)
    expect(token.stdout).toBe(`${first.accessToken}\n`)
    expect(await server.introspect(first.accessToken)).toMatchObject({ active: true, client_id: CLIENT_ID, sub: USER })

    const refreshesBefore = server.grants("refresh_token")
    const refresh = await run(["refresh", PROVIDER], env)
    expectOk(refresh)
    expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
    const second = storedLogin(home)
    expect(second.accessToken).not.toBe(first.accessToken)
    expect(second.refreshToken).not.toBe(first.refreshToken)
    // Rotation: the spent refresh token is dead at the server, the new one alive.
    expect(await server.introspect(first.refreshToken, "refresh_token")).toEqual({ active: false })
    expect(await server.introspect(second.refreshToken, "refresh_token")).toMatchObject({ active: true })
    expect(await server.introspect(second.accessToken)).toMatchObject({ active: true })

    const revokedBefore = server.revokedGrants()
    const logout = await run(["logout", PROVIDER], env)
    expectOk(logout)
    expect(logout.stderr).toContain("Revoked")
    expect(server.revokedGrants()).toBe(revokedBefore + 1)
    // The whole grant is gone: its refresh token and its access token.
    expect(await server.introspect(second.refreshToken, "refresh_token")).toEqual({ active: false })
    expect(await server.introspect(second.accessToken)).toEqual({ active: false })

    const after = await run(["status", PROVIDER], env)
    expect(after.code).toBe(1)
    expect(after.stdout).toContain("Not logged in")
  })

  it("device login: the code is approved at the server's device page, polling ends in a stored login", async () => {
    const home = newHome()
    const devicesBefore = server.grants(DEVICE_GRANT)
    const child = start(["login", PROVIDER, "--device", "--json"], cliEnv(home))
    const done = finish(child)
    const code = await nextEvent(child, "device_code")
    expect(code).toMatchObject({ verification_uri: `${server.issuer}/device` })
    expect(String(code.user_code)).toMatch(/^[A-Z]{4}-[A-Z]{4}$/)

    // A person opens the page, types the code, signs in and consents.
    const visit = await new Browser().navigate(String(code.verification_uri), { fields: { ...typed, user_code: String(code.user_code) } })
    expect(visit.status, visit.trail.join("\n")).toBe(200)
    expect(visit.body).toContain("Sign-in Success")

    const result = await done
    expectOk(result)
    expect(events(result.stdout).map((e) => e.event)).toEqual(["device_code", "logged_in"])
    expect(events(result.stdout)[1]).toMatchObject({ provider: PROVIDER, account: EMAIL })
    expect(server.grants(DEVICE_GRANT)).toBe(devicesBefore + 1)
    const stored = storedLogin(home)
    expect(await server.introspect(stored.accessToken)).toMatchObject({ active: true, sub: USER })
    expect(await server.introspect(stored.refreshToken, "refresh_token")).toMatchObject({ active: true })
  })

  it("8 processes at once: `token` refreshes exactly once at the server; `refresh` never replays a refresh token", async () => {
    // This client's code-grant access tokens live 60 s, inside the 5-minute refresh skew;
    // refreshed ones live an hour, outside it.
    const home = newHome(SHORT_CLIENT_ID)
    expectOk((await cliLogin(home)).result)
    const login = storedLogin(home)
    expect((Date.parse(login.expiresAt) - Date.now()) / 1000).toBeLessThanOrEqual(SHORT_ACCESS_TOKEN_TTL)
    // A 60-second token is due at half its lifetime, 30 s from now: make it due at once.
    expireStoredLogin(home)

    const refreshesBefore = server.grants("refresh_token")
    const revokedBefore = server.revokedGrants()
    const tokens = await concurrently(8, ["token", PROVIDER], home)
    for (const t of tokens) expectOk(t)
    expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
    const refreshed = storedLogin(home)
    expect(refreshed.accessToken).not.toBe(login.accessToken)
    expect(new Set(tokens.map((t) => t.stdout))).toEqual(new Set([`${refreshed.accessToken}\n`]))
    expect((Date.parse(refreshed.expiresAt) - Date.now()) / 1000).toBeGreaterThan(ACCESS_TOKEN_TTL - 120)

    // Forced refreshes: a process that waited for the lock and finds the tokens changed uses
    // them; one that read after a refresh spends the current refresh token. None spends a
    // rotated one, which would make the server revoke the grant.
    const refreshes = await concurrently(8, ["refresh", PROVIDER], home)
    for (const r of refreshes) expectOk(r)
    const spent = server.grants("refresh_token") - refreshesBefore - 1
    expect(spent).toBeGreaterThanOrEqual(1)
    expect(spent).toBeLessThanOrEqual(8)
    expect(server.revokedGrants()).toBe(revokedBefore)
    const final = storedLogin(home)
    expect(await server.introspect(final.refreshToken, "refresh_token")).toMatchObject({ active: true })
    expect(await server.introspect(final.accessToken)).toMatchObject({ active: true })
  }, 90_000)

  it("8 processes whose refreshed tokens live 60 s (inside the 5-minute skew): exactly 1 refresh", async () => {
    const home = newHome(MINUTE_CLIENT_ID)
    expectOk((await cliLogin(home)).result)
    expireStoredLogin(home)
    const refreshesBefore = server.grants("refresh_token")
    const tokens = await concurrently(8, ["token", PROVIDER], home)
    for (const t of tokens) expectOk(t)
    // The 7 that waited for the lock found tokens changed meanwhile and unexpired, and used
    // them, though they have less than the skew left.
    expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
    const refreshed = storedLogin(home)
    expect((Date.parse(refreshed.expiresAt) - Date.now()) / 1000).toBeLessThanOrEqual(SHORT_ACCESS_TOKEN_TTL)
    expect(new Set(tokens.map((t) => t.stdout))).toEqual(new Set([`${refreshed.accessToken}\n`]))
    // Due at half their lifetime (30 s), not at once: 8 more right away refresh nothing.
    const again = await concurrently(8, ["token", PROVIDER], home)
    for (const t of again) expectOk(t)
    expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
  }, 90_000)

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} 1 s into \`token\`, the refresh answer held after rotation: the save completes, exit 130, the next \`token\` works with no replay`, async () => {
      const home = newHome()
      const env = cliEnv(home)
      expectOk((await cliLogin(home)).result)
      const old = storedLogin(home)
      expireStoredLogin(home)
      const refreshesBefore = server.grants("refresh_token")
      const revokedBefore = server.revokedGrants()
      server.holdRefreshAnswers(3_000)
      try {
        const child = start(["token", PROVIDER], env)
        const done = finish(child)
        // Wait until the server has rotated the refresh token (its answer is now held).
        const deadline = Date.now() + 20_000
        while (server.grants("refresh_token") === refreshesBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
        expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
        await new Promise((r) => setTimeout(r, 1_000))
        const signalled = Date.now()
        child.kill(signal)
        const result = await done
        const took = Date.now() - signalled
        expect(result.code, result.stderr).toBe(130)
        expect(result.stdout).toBe("")
        // It waited for the held answer (about 2 s more), not for the whole request timeout.
        expect(took).toBeGreaterThan(1_000)
        expect(took).toBeLessThan(20_000)
        const saved = storedLogin(home)
        expect(saved.refreshToken).not.toBe(old.refreshToken)
        expect(await server.introspect(saved.refreshToken, "refresh_token")).toMatchObject({ active: true })
        expect(await server.introspect(old.refreshToken, "refresh_token")).toEqual({ active: false })
      } finally {
        server.holdRefreshAnswers(0)
      }
      // The next command uses the saved login: no sign-in, no second refresh, no replay.
      const next = await run(["token", PROVIDER], env)
      expectOk(next)
      expect(next.stdout).toBe(`${storedLogin(home).accessToken}\n`)
      expect(server.grants("refresh_token")).toBe(refreshesBefore + 1)
      expect(server.revokedGrants()).toBe(revokedBefore)
    }, 60_000)
  }

  it("after a refusal: status shows it and exits 1; token fails at once with no request; a new login clears it", async () => {
    const home = newHome()
    const env = cliEnv(home)
    expectOk((await cliLogin(home)).result)
    const copy = `${credentialsPath(home)}.copy`
    fs.copyFileSync(credentialsPath(home), copy)
    expectOk(await run(["refresh", PROVIDER], env))
    // An old copy of the file comes back (a backup restored): its refresh token is spent.
    fs.copyFileSync(copy, credentialsPath(home))
    expect((await run(["refresh", PROVIDER], env)).code).toBe(1)

    const status = await run(["status", PROVIDER], env)
    expect(status.code).toBe(1)
    // The report is the data of `status`: stdout (issue 15), ✗ for an unusable login.
    expect(status.stdout).toMatch(/✗ .*Logged in with OAuth/)
    expect(status.stdout).toContain("Refused by op (invalid_grant)")
    expect(status.stdout).toContain(`agent-auth login ${PROVIDER}`)

    const refreshesBefore = server.grants("refresh_token")
    const requestsBefore = server.tokenRequests()
    const token = await run(["token", PROVIDER], env)
    expect(token.code).toBe(1)
    expect(token.stderr).toContain("invalid_grant")
    expect(token.stderr).toContain(`agent-auth login ${PROVIDER}`)
    expect(server.tokenRequests()).toBe(requestsBefore)
    expect(server.grants("refresh_token")).toBe(refreshesBefore)

    expectOk((await cliLogin(home)).result)
    const after = await run(["status", PROVIDER], env)
    expectOk(after)
    expect(after.stdout).toContain("Logged in with OAuth")
    expect(after.stdout).not.toContain("Refused")
    expectOk(await run(["token", PROVIDER], env))
  })

  it("a replayed refresh token: the server revokes the grant; ReauthRequired (exit 1, names the login command), nothing deleted", async () => {
    const home = newHome()
    const env = cliEnv(home)
    expectOk((await cliLogin(home)).result)
    const copy = `${credentialsPath(home)}.copy`
    fs.copyFileSync(credentialsPath(home), copy)
    const old = storedLogin(home)

    expectOk(await run(["refresh", PROVIDER], env))
    const rotated = storedLogin(home)
    expect(await server.introspect(rotated.refreshToken, "refresh_token")).toMatchObject({ active: true })

    // Another program kept the old file and refreshes with the spent token.
    fs.copyFileSync(copy, credentialsPath(home))
    const revokedBefore = server.revokedGrants()
    const replay = await run(["refresh", PROVIDER], env)
    expect(replay.code).toBe(1)
    expect(replay.stderr).toContain("can no longer be used")
    expect(replay.stderr).toContain(`agent-auth login ${PROVIDER}`)
    expect(replay.stderr).not.toContain(old.refreshToken)
    expect(server.revokedGrants()).toBe(revokedBefore + 1)
    expect(await server.introspect(rotated.refreshToken, "refresh_token")).toEqual({ active: false })

    // The login stays where it was: reported, not deleted.
    expect(storedLogin(home)).toEqual(old)
  })
})
