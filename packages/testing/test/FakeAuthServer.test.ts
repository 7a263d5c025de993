import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import type { Scope } from "effect"
import * as jose from "jose"
import * as FakeAuthServer from "../src/FakeAuthServer.js"
import { Fault } from "../src/FakeAuthServer.js"

// ---------------------------------------------------------------------------------------
// helpers

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
}

const body = (a: Answer): any => JSON.parse(a.text)

const send = (http: HttpClient.HttpClient, request: HttpClientRequest.HttpClientRequest) =>
  http.execute(request).pipe(
    Effect.flatMap((r) => Effect.map(r.text, (text): Answer => ({ status: r.status, headers: r.headers, text }))),
    Effect.scoped
  )

const get = (http: HttpClient.HttpClient, url: string | URL) => send(http, HttpClientRequest.get(url))
const postForm = (http: HttpClient.HttpClient, url: string, form: Record<string, string>) =>
  send(http, HttpClientRequest.post(url).pipe(HttpClientRequest.bodyUrlParams(form)))
const postJson = (http: HttpClient.HttpClient, url: string, json: unknown) =>
  send(http, HttpClientRequest.post(url).pipe(HttpClientRequest.bodyUnsafeJson(json)))

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")
const s256 = (v: string) =>
  Effect.promise(() => crypto.subtle.digest("SHA-256", new TextEncoder().encode(v))).pipe(
    Effect.map((d) => b64url(new Uint8Array(d)))
  )
const randomString = () => b64url(crypto.getRandomValues(new Uint8Array(32)))

type Server = FakeAuthServer.FakeAuthServerShape

interface LoginOptions {
  readonly clientId?: string
  readonly redirectUri?: string
  readonly nonce?: string
  readonly extra?: Record<string, string>
}

/** GET /authorize and read the redirect. */
const authorize = (http: HttpClient.HttpClient, server: Server, o: LoginOptions = {}) =>
  Effect.gen(function*() {
    const verifier = randomString()
    const state = randomString()
    const redirectUri = o.redirectUri ?? "http://127.0.0.1:53123/callback"
    const url = new URL(server.endpoints.authorization)
    const params: Record<string, string> = {
      response_type: "code",
      client_id: o.clientId ?? server.clientId,
      redirect_uri: redirectUri,
      scope: "openid profile email offline_access",
      state,
      code_challenge: yield* s256(verifier),
      code_challenge_method: "S256",
      ...(o.nonce === undefined ? {} : { nonce: o.nonce }),
      ...o.extra
    }
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
    const answer = yield* get(http, url)
    expect(answer.status).toBe(302)
    const location = new URL(answer.headers["location"]!)
    expect(location.origin + location.pathname).toBe(redirectUri)
    expect(location.searchParams.get("state")).toBe(state)
    return { code: location.searchParams.get("code")!, location, verifier, redirectUri, clientId: params["client_id"]! }
  })

const exchange = (
  http: HttpClient.HttpClient,
  server: Server,
  login: { code: string; verifier: string; redirectUri: string; clientId: string },
  extra: Record<string, string> = {}
) =>
  postForm(http, server.endpoints.token, {
    grant_type: "authorization_code",
    code: login.code,
    code_verifier: login.verifier,
    redirect_uri: login.redirectUri,
    client_id: login.clientId,
    ...extra
  })

const login = (http: HttpClient.HttpClient, server: Server, o: LoginOptions = {}) =>
  Effect.gen(function*() {
    const a = yield* authorize(http, server, o)
    const answer = yield* exchange(http, server, a)
    expect(answer.status).toBe(200)
    return body(answer) as { access_token: string; refresh_token: string; id_token: string; expires_in: number; scope: string }
  })

const refreshForm = (http: HttpClient.HttpClient, server: Server, refreshToken: string, clientId = server.clientId) =>
  postForm(http, server.endpoints.token, { grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId })

const introspectHttp = (http: HttpClient.HttpClient, server: Server, token: string) =>
  Effect.map(postForm(http, server.endpoints.introspection, { token }), (a) => body(a) as { active: boolean })

const headerOf = (jwt: string) => jose.decodeProtectedHeader(jwt)

// ---------------------------------------------------------------------------------------
// The same behaviour over a real socket (live clock) and in memory.

interface Transport {
  readonly name: string
  readonly test: typeof it.live
  readonly start: (
    options?: FakeAuthServer.FakeAuthServerOptions
  ) => Effect.Effect<{ server: Server; http: HttpClient.HttpClient }, unknown, Scope.Scope>
}

// Manual redirects: the test reads the authorization server's 302 itself.
const fetchClient = Effect.provide(HttpClient.HttpClient, FetchHttpClient.layer)

const transports: ReadonlyArray<Transport> = [
  {
    name: "over a socket on 127.0.0.1",
    test: it.live,
    start: (options) =>
      Effect.gen(function*() {
        const server = yield* FakeAuthServer.make(options)
        const http = yield* fetchClient
        return {
          server,
          http: http.pipe(
            HttpClient.transform((effect) => Effect.provideService(effect, FetchHttpClient.RequestInit, { redirect: "manual" }))
          )
        }
      })
  },
  {
    name: "in memory",
    test: it.effect,
    start: (options) => Effect.map(FakeAuthServer.makeInMemory(options), (server) => ({ server, http: server.client }))
  }
]

for (const t of transports) {
  describe(`FakeAuthServer ${t.name}`, () => {
    const run = (name: string, options: FakeAuthServer.FakeAuthServerOptions | undefined, f: (s: { server: Server; http: HttpClient.HttpClient }) => Effect.Effect<void, unknown, Scope.Scope>) =>
      t.test(name, () => Effect.scoped(Effect.flatMap(t.start(options), f)))

    run("serves an OIDC discovery document whose issuer is its own URL", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        expect(server.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        const answer = yield* get(http, `${server.issuer}/.well-known/openid-configuration`)
        expect(answer.status).toBe(200)
        const doc = body(answer)
        expect(doc).toMatchObject({
          issuer: server.issuer,
          authorization_endpoint: `${server.issuer}/authorize`,
          token_endpoint: `${server.issuer}/token`,
          revocation_endpoint: `${server.issuer}/revoke`,
          introspection_endpoint: `${server.issuer}/introspect`,
          device_authorization_endpoint: `${server.issuer}/device_authorization`,
          jwks_uri: `${server.issuer}/jwks`,
          id_token_signing_alg_values_supported: ["RS256"],
          code_challenge_methods_supported: ["S256"],
          authorization_response_iss_parameter_supported: true,
          response_types_supported: ["code"]
        })
        expect(doc.grant_types_supported).toContain("urn:ietf:params:oauth:grant-type:device_code")
        const rfc8414 = yield* get(http, `${server.issuer}/.well-known/oauth-authorization-server`)
        expect(body(rfc8414).issuer).toBe(server.issuer)
        expect((yield* server.counts).discovery).toBe(2)
      }))

    run("authorization code + PKCE: right verifier works, a wrong one does not consume the code, a second use fails", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const nonce = randomString()
        const a = yield* authorize(http, server, { nonce })
        expect(a.location.searchParams.get("iss")).toBe(server.issuer)
        const wrong = yield* exchange(http, server, { ...a, verifier: randomString() })
        expect(wrong.status).toBe(400)
        expect(body(wrong).error).toBe("invalid_grant")
        const wrongRedirect = yield* exchange(http, server, { ...a, redirectUri: "http://127.0.0.1:1/other" })
        expect(body(wrongRedirect).error).toBe("invalid_grant")
        const ok = yield* exchange(http, server, a)
        expect(ok.status).toBe(200)
        expect(ok.headers["cache-control"]).toBe("no-store")
        const tokens = body(ok)
        expect(tokens).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "openid profile email offline_access" })
        expect(typeof tokens.refresh_token).toBe("string")
        // The ID token verifies against the served JWKS, with the claims a client checks.
        const jwks = jose.createLocalJWKSet(body(yield* get(http, server.endpoints.jwks)))
        const now = new Date(yield* Clock.currentTimeMillis)
        const { payload, protectedHeader } = yield* Effect.promise(() =>
          jose.jwtVerify(tokens.id_token, jwks, { issuer: server.issuer, audience: server.clientId, currentDate: now })
        )
        expect(protectedHeader.alg).toBe("RS256")
        expect(protectedHeader.kid).toBe(yield* server.currentKid)
        expect(payload).toMatchObject({
          sub: FakeAuthServer.defaultUser.sub,
          azp: server.clientId,
          nonce,
          email: FakeAuthServer.defaultUser.email,
          name: FakeAuthServer.defaultUser.name
        })
        expect(yield* server.isActive(tokens.access_token)).toBe(true)
        // A replayed code fails and takes down what it produced (RFC 6749 §4.1.2).
        const again = yield* exchange(http, server, a)
        expect(body(again).error).toBe("invalid_grant")
        expect(yield* server.isActive(tokens.access_token)).toBe(false)
        expect((yield* server.counts).authorizationCode).toBe(4)
      }))

    run("authorization errors: bad client or redirect is an HTML 400, other errors redirect", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const url = (params: Record<string, string>) => {
          const u = new URL(server.endpoints.authorization)
          for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
          return u
        }
        const good = {
          response_type: "code",
          client_id: server.clientId,
          redirect_uri: "http://localhost:1455/auth/callback",
          code_challenge: "a".repeat(43),
          code_challenge_method: "S256",
          state: "s1"
        }
        const badClient = yield* get(http, url({ ...good, client_id: "nobody" }))
        expect(badClient.status).toBe(400)
        expect(badClient.headers["content-type"]).toContain("text/html")
        expect(badClient.headers["location"]).toBeUndefined()
        const badRedirect = yield* get(http, url({ ...good, redirect_uri: "https://evil.example/cb" }))
        expect(badRedirect.status).toBe(400)
        expect(badRedirect.headers["location"]).toBeUndefined()
        const plain = yield* get(http, url({ ...good, code_challenge_method: "plain" }))
        expect(plain.status).toBe(302)
        expect(new URL(plain.headers["location"]!).searchParams.get("error")).toBe("invalid_request")
        const noPkce = yield* get(http, url({ ...good, code_challenge: "" }))
        expect(new URL(noPkce.headers["location"]!).searchParams.get("error")).toBe("invalid_request")
        yield* server.setAuthorizeError({ error: "access_denied", description: "the user said no" })
        const denied = new URL((yield* get(http, url(good))).headers["location"]!)
        expect(denied.searchParams.get("error")).toBe("access_denied")
        expect(denied.searchParams.get("error_description")).toBe("the user said no")
        expect(denied.searchParams.get("state")).toBe("s1")
        expect(denied.searchParams.get("code")).toBeNull()
      }))

    run("refresh rotates; a rotated token replayed revokes the whole grant", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const first = yield* login(http, server)
        const r1 = yield* refreshForm(http, server, first.refresh_token)
        expect(r1.status).toBe(200)
        const second = body(r1)
        expect(second.refresh_token).not.toBe(first.refresh_token)
        expect(second.access_token).not.toBe(first.access_token)
        expect((yield* introspectHttp(http, server, second.access_token)).active).toBe(true)
        expect((yield* introspectHttp(http, server, first.refresh_token)).active).toBe(false)
        const replay = yield* refreshForm(http, server, first.refresh_token)
        expect(replay.status).toBe(400)
        expect(body(replay).error).toBe("invalid_grant")
        // Replay detection revokes every token of the grant, the newest included.
        expect((yield* introspectHttp(http, server, second.access_token)).active).toBe(false)
        expect((yield* introspectHttp(http, server, first.access_token)).active).toBe(false)
        const afterRevoke = yield* refreshForm(http, server, second.refresh_token)
        expect(body(afterRevoke).error).toBe("invalid_grant")
        // Another client cannot use the token.
        const other = yield* login(http, server)
        const wrongClient = yield* refreshForm(http, server, other.refresh_token, "agent-auth-confidential")
        expect(wrongClient.status).toBe(401)
        expect(body(wrongClient).error).toBe("invalid_client")
        expect((yield* server.counts).refreshToken).toBe(4)
      }))

    run("revocation: 200 always; a refresh token revokes its grant, an access token only itself", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const a = yield* login(http, server)
        const revokeAccess = yield* postForm(http, server.endpoints.revocation, {
          token: a.access_token,
          token_type_hint: "access_token",
          client_id: server.clientId
        })
        expect(revokeAccess.status).toBe(200)
        expect(yield* server.isActive(a.access_token)).toBe(false)
        expect(yield* server.isActive(a.refresh_token)).toBe(true)
        const revokeRefresh = yield* postForm(http, server.endpoints.revocation, { token: a.refresh_token, client_id: server.clientId })
        expect(revokeRefresh.status).toBe(200)
        expect(yield* server.isActive(a.refresh_token)).toBe(false)
        expect(body(yield* refreshForm(http, server, a.refresh_token)).error).toBe("invalid_grant")
        const unknown = yield* postForm(http, server.endpoints.revocation, { token: "no-such-token", client_id: server.clientId })
        expect(unknown.status).toBe(200)
        expect((yield* server.counts).revocation).toBe(3)
        // The user-info endpoint refuses a revoked token and accepts a live one.
        const b = yield* login(http, server)
        const info = yield* send(http, HttpClientRequest.get(server.endpoints.userinfo).pipe(HttpClientRequest.bearerToken(b.access_token)))
        expect(body(info).email).toBe(FakeAuthServer.defaultUser.email)
        const refused = yield* send(http, HttpClientRequest.get(server.endpoints.userinfo).pipe(HttpClientRequest.bearerToken(a.access_token)))
        expect(refused.status).toBe(401)
      }))

    run("device flow: pending, approved over HTTP, then tokens once", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const start = yield* postForm(http, server.endpoints.deviceAuthorization, { client_id: server.clientId, scope: "openid offline_access" })
        expect(start.status).toBe(200)
        const d = body(start)
        expect(d).toMatchObject({ verification_uri: server.endpoints.deviceVerification, expires_in: 900, interval: 5 })
        expect(d.user_code).toMatch(/^[B-Z]{4}-[B-Z]{4}$/)
        expect(d.verification_uri_complete).toBe(`${server.endpoints.deviceVerification}?user_code=${d.user_code}`)
        expect(yield* server.pendingUserCodes).toEqual([d.user_code])
        const poll = () =>
          postForm(http, server.endpoints.token, {
            grant_type: "urn:ietf:params:oauth:grant-type:device_code",
            device_code: d.device_code,
            client_id: server.clientId
          })
        expect(body(yield* poll()).error).toBe("authorization_pending")
        const page = yield* get(http, `${server.issuer}/device?user_code=${encodeURIComponent(d.user_code)}&approve=1`)
        expect(page.status).toBe(200)
        expect(page.text).toContain("Device approved")
        const done = yield* poll()
        expect(done.status).toBe(200)
        expect(yield* server.isActive(body(done).access_token)).toBe(true)
        expect(body(yield* poll()).error).toBe("invalid_grant")
        expect(yield* server.pendingUserCodes).toEqual([])
        // Denied programmatically.
        const d2 = body(yield* postForm(http, server.endpoints.deviceAuthorization, { client_id: server.clientId }))
        expect(yield* server.denyDevice(d2.user_code.toLowerCase())).toBe(true)
        expect(yield* server.approveDevice(d2.user_code)).toBe(false)
        const denied = yield* postForm(http, server.endpoints.token, {
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: d2.device_code,
          client_id: server.clientId
        })
        expect(body(denied).error).toBe("access_denied")
        const counts = yield* server.counts
        expect(counts.deviceAuthorization).toBe(2)
        expect(counts.deviceCode).toBe(4)
      }))

    run("openai flavor: JSON refresh with OpenAI's error codes, JSON revoke, device auth", { flavor: "openai" }, ({ http, server }) =>
      Effect.gen(function*() {
        expect(server.clientId).toBe(FakeAuthServer.openaiClientId)
        expect(server.endpoints.token).toBe(`${server.issuer}/oauth/token`)
        const jwksAnswer = yield* get(http, `${server.issuer}/.well-known/jwks.json`)
        expect(body(jwksAnswer).keys).toHaveLength(1)
        const first = yield* login(http, server, { redirectUri: "http://localhost:1455/auth/callback" })
        // Both tokens are JWTs carrying the ChatGPT account claims.
        const idClaims = jose.decodeJwt(first.id_token) as any
        expect(idClaims["https://api.openai.com/auth"]).toMatchObject({
          chatgpt_account_id: FakeAuthServer.defaultUser.openai.chatgpt_account_id,
          chatgpt_plan_type: "plus",
          chatgpt_user_id: FakeAuthServer.defaultUser.openai.chatgpt_user_id,
          organization_id: FakeAuthServer.defaultUser.openai.organization_id
        })
        const accessClaims = jose.decodeJwt(first.access_token)
        expect(accessClaims.exp! - accessClaims.iat!).toBe(3600)
        const refresh = (token: string) =>
          postJson(http, server.endpoints.token, { client_id: server.clientId, grant_type: "refresh_token", refresh_token: token })
        const r1 = yield* refresh(first.refresh_token)
        expect(r1.status).toBe(200)
        const second = body(r1)
        expect(second.refresh_token).not.toBe(first.refresh_token)
        const replay = yield* refresh(first.refresh_token)
        expect(replay.status).toBe(401)
        expect(body(replay).error.code).toBe("refresh_token_reused")
        const invalidated = yield* refresh(second.refresh_token)
        expect(body(invalidated).error.code).toBe("refresh_token_invalidated")
        // Revocation takes JSON.
        const third = yield* login(http, server)
        const revoked = yield* postJson(http, server.endpoints.revocation, {
          token: third.refresh_token,
          token_type_hint: "refresh_token",
          client_id: server.clientId
        })
        expect(revoked.status).toBe(200)
        expect(yield* server.isActive(third.access_token)).toBe(false)
        // Device auth: user code, 403 while pending, then a code exchanged with the callback redirect.
        const uc = yield* postJson(http, `${server.issuer}/api/accounts/deviceauth/usercode`, { client_id: server.clientId })
        expect(uc.status).toBe(200)
        const { device_auth_id, interval, user_code } = body(uc)
        expect(interval).toBe("5")
        const poll = () => postJson(http, `${server.issuer}/api/accounts/deviceauth/token`, { device_auth_id, user_code })
        expect((yield* poll()).status).toBe(403)
        expect((yield* get(http, `${server.issuer}/codex/device?user_code=${user_code}&approve=1`)).status).toBe(200)
        const approved = yield* poll()
        expect(approved.status).toBe(200)
        const { authorization_code, code_challenge, code_verifier } = body(approved)
        expect(yield* s256(code_verifier)).toBe(code_challenge)
        const tokens = yield* exchange(http, server, {
          code: authorization_code,
          verifier: code_verifier,
          redirectUri: `${server.issuer}/deviceauth/callback`,
          clientId: server.clientId
        })
        expect(tokens.status).toBe(200)
        expect(yield* server.isActive(body(tokens).access_token)).toBe(true)
        expect((yield* poll()).status).toBe(404)
      }))

    run("a confidential client authenticates with client_secret_post", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const a = yield* authorize(http, server, { clientId: FakeAuthServer.confidentialClient.clientId })
        const noSecret = yield* exchange(http, server, a)
        expect(noSecret.status).toBe(401)
        expect(body(noSecret).error).toBe("invalid_client")
        const wrong = yield* exchange(http, server, a, { client_secret: "wrong" })
        expect(body(wrong).error).toBe("invalid_client")
        const ok = yield* exchange(http, server, a, { client_secret: FakeAuthServer.confidentialClient.clientSecret! })
        expect(ok.status).toBe(200)
      }))

    run("without auto-approval, a consent page answers with approve and deny links", { autoApprove: false }, ({ http, server }) =>
      Effect.gen(function*() {
        const u = new URL(server.endpoints.authorization)
        const params = {
          response_type: "code",
          client_id: server.clientId,
          redirect_uri: "http://127.0.0.1:4000/cb",
          code_challenge: "b".repeat(43),
          code_challenge_method: "S256",
          state: "xyz"
        }
        for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
        const consent = yield* get(http, u)
        expect(consent.status).toBe(200)
        const link = (id: string) => consent.text.match(new RegExp(`id="${id}" href="([^"]+)"`))![1]!.replace(/&amp;/g, "&")
        const approved = yield* get(http, link("approve"))
        expect(approved.status).toBe(302)
        expect(new URL(approved.headers["location"]!).searchParams.get("code")).toMatch(/.{20,}/)
        // One decision per page.
        expect((yield* get(http, link("deny"))).status).toBe(400)
        const second = yield* get(http, u)
        const denied = yield* get(http, second.text.match(/id="deny" href="([^"]+)"/)![1]!.replace(/&amp;/g, "&"))
        const location = new URL(denied.headers["location"]!)
        expect(location.searchParams.get("error")).toBe("access_denied")
        expect(location.searchParams.get("state")).toBe("xyz")
      }))

    run("faults: each kind answers the next matching token request, then the server is normal again", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const tokens = yield* login(http, server)
        const refresh = () => refreshForm(http, server, tokens.refresh_token)

        yield* server.inject(Fault.status(503), { times: 2, grant: "refresh_token" })
        expect((yield* refresh()).status).toBe(503)
        expect(body(yield* refresh()).error).toBe("temporarily_unavailable")

        yield* server.inject(Fault.status(500))
        expect((yield* refresh()).status).toBe(500)

        yield* server.inject(Fault.rateLimited(30))
        const limited = yield* refresh()
        expect(limited.status).toBe(429)
        expect(limited.headers["retry-after"]).toBe("30")

        yield* server.inject(Fault.malformedJson)
        const malformed = yield* refresh()
        expect(malformed.status).toBe(200)
        expect(() => JSON.parse(malformed.text)).toThrow()

        yield* server.inject(Fault.html(502))
        const html = yield* refresh()
        expect(html.status).toBe(502)
        expect(html.headers["content-type"]).toContain("text/html")

        yield* server.inject(Fault.missingAccessToken)
        const missing = yield* refresh()
        expect(missing.status).toBe(200)
        expect(body(missing).access_token).toBeUndefined()

        yield* server.inject(Fault.invalidGrant)
        expect(body(yield* refresh()).error).toBe("invalid_grant")

        yield* server.inject(Fault.connectionReset)
        const reset = yield* Effect.flip(refresh())
        expect(reset._tag).toBe("RequestError")
        expect(reset._tag === "RequestError" && reset.reason).toBe("Transport")

        // A fault for another grant leaves this one alone, and none of the above consumed the token.
        yield* server.inject(Fault.status(500), { grant: "authorization_code" })
        const ok = yield* refresh()
        expect(ok.status).toBe(200)
        expect((yield* server.counts).refreshToken).toBe(10)
        // The code exchange meets the queued fault.
        const a = yield* authorize(http, server)
        expect((yield* exchange(http, server, a)).status).toBe(500)
        expect((yield* exchange(http, server, a)).status).toBe(200)

        // Other endpoints take faults too.
        yield* server.inject(Fault.status(503), { endpoint: "jwks" })
        expect((yield* get(http, server.endpoints.jwks)).status).toBe(503)
        expect((yield* get(http, server.endpoints.jwks)).status).toBe(200)
      }))

    run("a fault after processing: the rotation happened, the answer was lost, the retry is a replay", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const tokens = yield* login(http, server)
        yield* server.inject(Fault.connectionReset, { afterProcessing: true })
        const lost = yield* Effect.flip(refreshForm(http, server, tokens.refresh_token))
        expect(lost._tag).toBe("RequestError")
        const retry = yield* refreshForm(http, server, tokens.refresh_token)
        expect(body(retry).error).toBe("invalid_grant")
        expect(yield* server.isActive(tokens.access_token)).toBe(false)
      }))

    run("key rotation: new kid signs; a verifier with the old JWKS meets an unknown kid", undefined, ({ http, server }) =>
      Effect.gen(function*() {
        const oldJwks = body(yield* get(http, server.endpoints.jwks))
        const oldKid = yield* server.currentKid
        const newKid = yield* server.rotateKeys()
        expect(newKid).not.toBe(oldKid)
        const tokens = yield* login(http, server)
        expect(headerOf(tokens.id_token).kid).toBe(newKid)
        const now = new Date(yield* Clock.currentTimeMillis)
        const stale = yield* Effect.flip(Effect.tryPromise(() =>
          jose.jwtVerify(tokens.id_token, jose.createLocalJWKSet(oldJwks), { currentDate: now })
        ))
        expect((stale.error as { code?: string }).code).toBe("ERR_JWKS_NO_MATCHING_KEY")
        const both = body(yield* get(http, server.endpoints.jwks))
        expect(both.keys.map((k: jose.JWK) => k.kid)).toEqual([oldKid, newKid])
        const verified = yield* Effect.promise(() =>
          jose.jwtVerify(tokens.id_token, jose.createLocalJWKSet(both), { issuer: server.issuer, currentDate: now })
        )
        expect(verified.payload.sub).toBe(FakeAuthServer.defaultUser.sub)
        const third = yield* server.rotateKeys({ keepOld: false })
        expect(body(yield* get(http, server.endpoints.jwks)).keys.map((k: jose.JWK) => k.kid)).toEqual([third])
        expect((yield* server.counts).jwks).toBe(3)
      }))
  })
}

// ---------------------------------------------------------------------------------------
// In memory only: time rules under TestClock, concurrency, the layers.

const memory = (options?: FakeAuthServer.FakeAuthServerOptions) =>
  Effect.map(FakeAuthServer.makeInMemory(options), (server) => ({ server, http: server.client }))

/** Let other fibers run (and their promises settle) until `done` holds. */
const until = (done: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (yield* done) return
      yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
    }
    throw new Error("condition never held")
  })

describe("FakeAuthServer time rules (TestClock)", () => {
  it.effect("an access token expires in virtual time; the refresh token outlives it", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      const t = yield* login(http, server)
      expect((yield* introspectHttp(http, server, t.access_token)).active).toBe(true)
      yield* TestClock.adjust(Duration.minutes(59))
      expect(yield* server.isActive(t.access_token)).toBe(true)
      yield* TestClock.adjust(Duration.minutes(1))
      expect((yield* introspectHttp(http, server, t.access_token)).active).toBe(false)
      expect(yield* server.isActive(Redacted.make(t.refresh_token))).toBe(true)
      expect((yield* refreshForm(http, server, t.refresh_token)).status).toBe(200)
    }))

  it.effect("token lifetimes follow the options; an expired refresh token is invalid_grant (refresh_token_expired for openai)", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory({ accessTokenTtl: "5 minutes", refreshTokenTtl: "1 day" })
      const t = yield* login(http, server)
      expect(t.expires_in).toBe(300)
      yield* TestClock.adjust(Duration.days(1))
      expect(body(yield* refreshForm(http, server, t.refresh_token)).error).toBe("invalid_grant")

      const openai = yield* memory({ flavor: "openai", refreshTokenTtl: "1 hour" })
      const o = yield* login(openai.http, openai.server)
      yield* TestClock.adjust(Duration.hours(2))
      const expired = yield* postJson(openai.http, openai.server.endpoints.token, {
        client_id: openai.server.clientId,
        grant_type: "refresh_token",
        refresh_token: o.refresh_token
      })
      expect(expired.status).toBe(401)
      expect(body(expired).error.code).toBe("refresh_token_expired")
    }))

  it.effect("authorization codes live 60 seconds", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      const a = yield* authorize(http, server)
      yield* TestClock.adjust(Duration.seconds(59))
      const b = yield* authorize(http, server)
      yield* TestClock.adjust(Duration.seconds(1))
      const late = yield* exchange(http, server, a)
      expect(body(late).error).toBe("invalid_grant")
      expect(body(late).error_description).toContain("expired")
      expect((yield* exchange(http, server, b)).status).toBe(200)
    }))

  it.effect("device polling: slow_down when too fast (interval grows by 5 s), expired_token after the lifetime", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory({ deviceCodeTtl: "10 minutes" })
      const d = body(yield* postForm(http, server.endpoints.deviceAuthorization, { client_id: server.clientId }))
      expect(d.expires_in).toBe(600)
      const poll = () =>
        Effect.map(
          postForm(http, server.endpoints.token, {
            grant_type: "urn:ietf:params:oauth:grant-type:device_code",
            device_code: d.device_code,
            client_id: server.clientId
          }),
          (a) => body(a).error as string
        )
      expect(yield* poll()).toBe("authorization_pending")
      yield* TestClock.adjust(Duration.seconds(4))
      expect(yield* poll()).toBe("slow_down")
      yield* TestClock.adjust(Duration.seconds(5))
      expect(yield* poll()).toBe("slow_down") // the interval is now 10 s
      yield* TestClock.adjust(Duration.seconds(15))
      expect(yield* poll()).toBe("authorization_pending")
      yield* TestClock.adjust(Duration.minutes(10))
      expect(yield* poll()).toBe("expired_token")
      expect(yield* server.approveDevice(d.user_code)).toBe(false)
    }))

  it.effect("a delay fault waits on the server's Clock", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      const t = yield* login(http, server)
      yield* server.inject(Fault.delay("30 seconds"), { grant: "refresh_token" })
      const fiber = yield* Effect.fork(refreshForm(http, server, t.refresh_token))
      yield* until(Effect.map(TestClock.sleeps(), (s) => s.length > 0))
      yield* TestClock.adjust(Duration.seconds(29))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.seconds(1))
      const answer = yield* Fiber.join(fiber)
      expect(answer.status).toBe(200)
    }))
})

describe("FakeAuthServer in memory", () => {
  it.effect("1,000 concurrent refreshes of one token: one rotation, every other answer a replay", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      const t = yield* login(http, server)
      const answers = yield* Effect.forEach(
        Array.from({ length: 1000 }),
        () => refreshForm(http, server, t.refresh_token),
        { concurrency: "unbounded" }
      )
      const ok = answers.filter((a) => a.status === 200)
      expect(ok).toHaveLength(1)
      expect(answers.filter((a) => a.status === 400 && body(a).error === "invalid_grant")).toHaveLength(999)
      // The replays revoked the grant, so the one rotated token is dead too.
      expect(yield* server.isActive(body(ok[0]!).refresh_token)).toBe(false)
      expect((yield* server.counts).refreshToken).toBe(1000)
    }))

  it.effect("the in-memory client refuses every URL outside the issuer", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      for (const url of ["https://example.com/token", "http://127.0.0.1:10/token", `${server.issuer}x/token`]) {
        const e = yield* Effect.flip(get(http, url))
        expect(e._tag).toBe("RequestError")
      }
      expect((yield* get(http, `${server.issuer}/nope`)).status).toBe(404)
    }))

  it.effect("the oidc flavor takes token requests only as forms", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      const t = yield* login(http, server)
      const answer = yield* postJson(http, server.endpoints.token, {
        grant_type: "refresh_token",
        refresh_token: t.refresh_token,
        client_id: server.clientId
      })
      expect(answer.status).toBe(400)
      expect(body(answer).error).toBe("invalid_request")
      expect((yield* refreshForm(http, server, t.refresh_token)).status).toBe(200)
    }))

  it.effect("issueTokens, setUser, revokeGrantOf and revokeAll", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      const minted = yield* server.issueTokens()
      expect(yield* server.isActive(minted.access_token)).toBe(true)
      expect(jose.decodeJwt(minted.id_token!).sub).toBe(FakeAuthServer.defaultUser.sub)
      yield* server.setUser({ sub: "user-2", email: "grace@example.test" })
      const second = yield* login(http, server)
      expect(jose.decodeJwt(second.id_token)).toMatchObject({ sub: "user-2", email: "grace@example.test" })
      expect(yield* server.revokeGrantOf(minted.refresh_token)).toBe(true)
      expect(yield* server.isActive(minted.access_token)).toBe(false)
      expect(yield* server.isActive(second.access_token)).toBe(true)
      yield* server.revokeAll
      expect(yield* server.isActive(second.access_token)).toBe(false)
      expect(yield* server.revokeGrantOf("unknown")).toBe(false)
      expect(yield* server.introspect(second.refresh_token)).toEqual({ active: false })
    }))

  it.effect("counts every endpoint and resets", () =>
    Effect.gen(function*() {
      const { http, server } = yield* memory()
      yield* get(http, server.endpoints.discovery)
      yield* get(http, server.endpoints.jwks)
      const t = yield* login(http, server)
      yield* refreshForm(http, server, t.refresh_token)
      yield* postForm(http, server.endpoints.revocation, { token: t.access_token })
      yield* introspectHttp(http, server, t.access_token)
      yield* postForm(http, server.endpoints.token, { grant_type: "password", client_id: server.clientId })
      expect(yield* server.counts).toEqual({
        authorizationCode: 1,
        refreshToken: 1,
        deviceCode: 0,
        jwtBearer: 0,
        otherGrant: 1,
        revocation: 1,
        jwks: 1,
        discovery: 1,
        authorize: 1,
        deviceAuthorization: 0,
        introspection: 1,
        userinfo: 0
      })
      yield* server.resetCounts
      expect((yield* server.counts).authorize).toBe(0)
    }))

  it.effect("layerInMemory provides the server and an HttpClient that reaches it", () =>
    Effect.gen(function*() {
      const server = yield* FakeAuthServer.FakeAuthServer
      const http = yield* HttpClient.HttpClient
      const doc = body(yield* get(http, server.endpoints.discovery))
      expect(doc.issuer).toBe("http://fake.test:8080")
    }).pipe(Effect.provide(FakeAuthServer.layerInMemory({ issuer: "http://fake.test:8080/" }))))
})

describe("FakeAuthServer.layer", () => {
  it.live("serves on 127.0.0.1 until the layer closes", () =>
    Effect.gen(function*() {
      const issuer = yield* Effect.scoped(
        Effect.gen(function*() {
          const server = yield* FakeAuthServer.FakeAuthServer
          const res = yield* Effect.promise(() => fetch(server.endpoints.discovery))
          expect(res.status).toBe(200)
          return server.issuer
        }).pipe(Effect.provide(Layer.fresh(FakeAuthServer.layer())))
      )
      const after = yield* Effect.exit(Effect.tryPromise(() => fetch(`${issuer}/.well-known/openid-configuration`)))
      expect(Exit.isFailure(after)).toBe(true)
    }))

  it.live("a socket connection reset drops the connection", () =>
    Effect.gen(function*() {
      const server = yield* FakeAuthServer.make()
      yield* server.inject(Fault.connectionReset, { endpoint: "discovery" })
      const dropped = yield* Effect.exit(Effect.tryPromise(() => fetch(server.endpoints.discovery)))
      expect(Exit.isFailure(dropped)).toBe(true)
      const res = yield* Effect.promise(() => fetch(server.endpoints.discovery))
      expect(res.status).toBe(200)
    }).pipe(Effect.scoped))
})

describe("FakeAuthServer snapshots", () => {
  /** Through JSON text, as a file would carry it. */
  const viaJson = (snapshot: unknown): unknown => JSON.parse(JSON.stringify(snapshot))

  it.effect("a restored server knows the tokens, codes and keys of the one it was taken from", () =>
    Effect.gen(function*() {
      const first = yield* memory()
      const t = yield* login(first.http, first.server)
      const rotated = body(yield* refreshForm(first.http, first.server, t.refresh_token))
      const pendingCode = yield* authorize(first.http, first.server)
      yield* first.server.setUser({ email: "grace@example.test" })
      const kid = yield* first.server.currentKid
      const snapshot = viaJson(yield* first.server.snapshot)

      const second = yield* memory({ restore: snapshot })
      expect(second.server.restored).toBe(true)
      expect(second.server.restoreProblem).toBeUndefined()
      expect(yield* second.server.currentKid).toBe(kid)
      expect((yield* second.server.jwks).keys).toEqual((yield* first.server.jwks).keys)
      // Counts belong to a run, not to the state.
      expect((yield* second.server.counts).authorizationCode).toBe(0)
      expect(yield* second.server.isActive(rotated.access_token)).toBe(true)
      // A refresh token issued before the snapshot works after it; the retired one is still a replay.
      const again = yield* refreshForm(second.http, second.server, rotated.refresh_token)
      expect(again.status).toBe(200)
      const newIdToken = body(again).id_token as string
      expect(headerOf(newIdToken).kid).toBe(kid)
      // Signed by the key the first server published.
      const firstKeys = { keys: [...(yield* first.server.jwks).keys] }
      const verified = yield* Effect.promise(() =>
        jose.jwtVerify(newIdToken, jose.createLocalJWKSet(firstKeys), { issuer: first.server.issuer, currentDate: new Date(0) })
      )
      expect(verified.payload.email).toBe(FakeAuthServer.defaultUser.email)
      // The code made before the snapshot is exchanged after it; the user set before it signs in next.
      expect((yield* exchange(second.http, second.server, pendingCode)).status).toBe(200)
      expect(jose.decodeJwt((yield* login(second.http, second.server)).id_token).email).toBe("grace@example.test")
      const replay = yield* refreshForm(second.http, second.server, t.refresh_token)
      expect(body(replay).error).toBe("invalid_grant")
    }))

  it.effect("rotated keys survive: every kid of the JWKS, the newest signing", () =>
    Effect.gen(function*() {
      const first = yield* memory()
      const old = yield* first.server.currentKid
      const fresh = yield* first.server.rotateKeys()
      const second = yield* memory({ restore: viaJson(yield* first.server.snapshot) })
      expect((yield* second.server.jwks).keys.map((k) => k.kid)).toEqual([old, fresh])
      expect(yield* second.server.currentKid).toBe(fresh)
      const tokens = yield* login(second.http, second.server)
      expect(headerOf(tokens.id_token).kid).toBe(fresh)
    }))

  it.effect("garbage, another issuer or flavor, or a tampered key start a fresh server", () =>
    Effect.gen(function*() {
      const good = yield* memory()
      const t = yield* login(good.http, good.server)
      const snapshot = viaJson(yield* good.server.snapshot) as any
      const tampered = { ...snapshot, keys: [{ ...snapshot.keys[0], n: snapshot.keys[0].n.replace(/^./, (c: string) => (c === "A" ? "B" : "A")) }] }
      const cases: ReadonlyArray<[unknown, FakeAuthServer.FakeAuthServerOptions]> = [
        ["not a snapshot", {}],
        [{ format: "something else" }, {}],
        [null, {}],
        [{ ...snapshot, grants: "nope" }, {}],
        [snapshot, { issuer: "http://127.0.0.1:10" }],
        [snapshot, { flavor: "openai" }],
        [tampered, {}]
      ]
      for (const [restore, options] of cases) {
        const { http, server } = yield* memory({ ...options, restore })
        expect(server.restored).toBe(false)
        expect(server.restoreProblem).toEqual(expect.any(String))
        expect(yield* server.currentKid).not.toBe(yield* good.server.currentKid)
        expect(yield* server.isActive(t.refresh_token)).toBe(false)
        expect((yield* refreshForm(http, server, t.refresh_token)).status).toBeGreaterThanOrEqual(400)
        // Fresh, and working.
        expect((yield* login(http, server)).access_token.length).toBeGreaterThan(20)
      }
      const plain = yield* memory()
      expect(plain.server.restored).toBe(false)
      expect(plain.server.restoreProblem).toBeUndefined()
    }))

  it.effect("persist gets the latest snapshot after each change, and nothing for requests that change nothing", () =>
    Effect.gen(function*() {
      const saved: Array<unknown> = []
      const { http, server } = yield* memory({ persist: (s) => Effect.sync(() => void saved.push(viaJson(s))) })
      yield* get(http, server.endpoints.discovery)
      yield* get(http, server.endpoints.jwks)
      expect(saved).toHaveLength(0)
      const a = yield* authorize(http, server)
      expect(saved).toHaveLength(1) // the code
      const t = body(yield* exchange(http, server, a))
      expect(saved).toHaveLength(2) // the grant and tokens
      yield* refreshForm(http, server, "unknown")
      expect(saved).toHaveLength(2)
      yield* server.rotateKeys()
      expect(saved).toHaveLength(3)
      const restored = yield* memory({ restore: saved[saved.length - 1] })
      expect(restored.server.restored).toBe(true)
      expect(yield* restored.server.currentKid).toBe(yield* server.currentKid)
      expect((yield* refreshForm(restored.http, restored.server, t.refresh_token)).status).toBe(200)
    }))

  it.live("a socket server persists once more when it closes, and restores on the same port", () =>
    Effect.gen(function*() {
      const saved: Array<unknown> = []
      const persist = (s: unknown) => Effect.sync(() => void saved.push(viaJson(s)))
      const { port, tokens } = yield* Effect.scoped(
        Effect.gen(function*() {
          const server = yield* FakeAuthServer.make({ persist })
          const tokens = yield* server.issueTokens()
          return { port: Number(new URL(server.issuer).port), tokens }
        })
      )
      expect(saved).toHaveLength(2) // issueTokens, then the close
      yield* Effect.scoped(
        Effect.gen(function*() {
          const server = yield* FakeAuthServer.make({ port, restore: saved[1] })
          expect(server.restored).toBe(true)
          const res = yield* Effect.promise(() =>
            fetch(server.endpoints.token, {
              method: "POST",
              body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token, client_id: server.clientId })
            })
          )
          expect(res.status).toBe(200)
        })
      )
    }))
})
