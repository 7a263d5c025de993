/**
 * The fake authorization server's HTTP app: one `HttpRouter` served both on a socket and
 * in memory. Handlers read and change state only through the transitions of
 * `fakeAuthState.ts`; time comes from the `Clock` captured when the server was made.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpApp } from "@effect/platform"
import { SecureRandom } from "@agent-auth/core"
import { type Clock, Duration, Effect, Option, Ref } from "effect"
import type { Keys } from "./fakeAuthKeys.js"
import * as S from "./fakeAuthState.js"
import * as JwtBearer from "./fakeAuthJwtBearer.js"

/** A response carrying this header is turned into a dropped connection by the transport. */
export const RESET_HEADER = "x-fake-auth-connection-reset"

export interface Paths {
  readonly authorize: string
  readonly token: string
  readonly revocation: string
  readonly jwks: string
  readonly introspection: string
  readonly userinfo: string
  /** RFC 8628 device authorization (oidc) or OpenAI's `deviceauth/usercode`. */
  readonly deviceAuthorization: string
  /** OpenAI's `deviceauth/token` poll (openai flavor only). */
  readonly deviceToken: string
  /** Where a person approves a user code. */
  readonly deviceVerification: string
}

export const pathsFor = (flavor: S.Flavor): Paths =>
  flavor === "openai"
    ? {
      authorize: "/oauth/authorize",
      token: "/oauth/token",
      revocation: "/oauth/revoke",
      jwks: "/.well-known/jwks.json",
      introspection: "/oauth/introspect",
      userinfo: "/oauth/userinfo",
      deviceAuthorization: "/api/accounts/deviceauth/usercode",
      deviceToken: "/api/accounts/deviceauth/token",
      deviceVerification: "/codex/device"
    }
    : {
      authorize: "/authorize",
      token: "/token",
      revocation: "/revoke",
      jwks: "/jwks",
      introspection: "/introspect",
      userinfo: "/userinfo",
      deviceAuthorization: "/device_authorization",
      deviceToken: "/device_token",
      deviceVerification: "/device"
    }

export interface AppConfig {
  readonly issuer: string
  readonly flavor: S.Flavor
  readonly clients: ReadonlyArray<S.FakeClient>
  readonly life: S.Lifetimes
  readonly codeTtlMillis: number
  readonly deviceCodeTtlMillis: number
  readonly deviceIntervalSeconds: number
  readonly autoApprove: boolean
  readonly issParameter: boolean
  readonly jwtAccessTokens: boolean
  readonly defaultScope: string
  /** Service accounts the JWT bearer grant accepts assertions from. */
  readonly serviceAccounts: ReadonlyArray<JwtBearer.ServiceAccount>
  /** More fields for the discovery document (extensions, RFC 8414 §2). */
  readonly discoveryExtra: Readonly<Record<string, unknown>>
}

export interface AppDeps {
  readonly config: AppConfig
  readonly state: Ref.Ref<S.State>
  readonly keys: Keys
  readonly clock: Clock.Clock
}

// ---------------------------------------------------------------------------------------
// helpers shared with the public module

export const randomToken = (n: number): Effect.Effect<string> =>
  Effect.map(SecureRandom.make.bytes(n), SecureRandom.base64url)

export const s256 = (verifier: string): Effect.Effect<string> =>
  Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))).pipe(
    Effect.map((d) => SecureRandom.base64url(new Uint8Array(d)))
  )

export const freshIds: Effect.Effect<S.Fresh> = Effect.all({
  grantId: randomToken(12),
  accessId: randomToken(32),
  refreshToken: randomToken(32)
})

/** The state key of an access token: its `jti` when it is a JWT, else the token itself. */
export const accessIdOf = (token: string): string | undefined => {
  const parts = token.split(".")
  if (parts.length !== 3) return token
  try {
    const payload = JSON.parse(new TextDecoder().decode(base64urlDecode(parts[1]!))) as { jti?: unknown }
    return typeof payload.jti === "string" ? payload.jti : undefined
  } catch {
    return undefined
  }
}

const base64urlDecode = (s: string): Uint8Array => {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"))
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ" // RFC 8628 §6.1: no vowels, no look-alikes

const userCode: Effect.Effect<string> = Effect.map(SecureRandom.make.bytes(8), (bytes) => {
  const chars = Array.from(bytes, (b) => USER_CODE_ALPHABET[b % USER_CODE_ALPHABET.length]!)
  return `${chars.slice(0, 4).join("")}-${chars.slice(4).join("")}`
})

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

const page = (title: string, body: string, status = 200) =>
  HttpServerResponse.text(
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`,
    { status, contentType: "text/html; charset=utf-8" }
  )

const noStore = { "cache-control": "no-store", pragma: "no-cache" }

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

const firstParam = (v: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof v === "string" ? v : v?.[0]

export interface Issued {
  readonly access_token: string
  readonly token_type: "Bearer"
  readonly expires_in: number
  readonly refresh_token: string
  readonly id_token?: string
  readonly scope: string
}

// ---------------------------------------------------------------------------------------

export const makeApp = (deps: AppDeps): {
  readonly app: HttpApp.Default
  /** A decided issuance as a token response body (JWTs signed with the current key). */
  readonly render: (issued: S.Issued) => Effect.Effect<Issued>
} => {
  const { clock, config, keys, state } = deps
  const paths = pathsFor(config.flavor)
  const url = (path: string) => `${config.issuer}${path}`
  const now = clock.currentTimeMillis
  const modify = <A>(f: (s: S.State, now: number) => [A, S.State]) =>
    Effect.flatMap(now, (t) => Ref.modify(state, (s) => f(s, t)))
  const count = (key: keyof S.Counts) => Ref.update(state, (s) => S.bump(s, key))

  // -- token strings ----------------------------------------------------------------------

  const openaiAuthClaim = (user: S.FakeUser) => ({
    chatgpt_account_id: user.openai.chatgpt_account_id,
    chatgpt_plan_type: user.openai.chatgpt_plan_type,
    chatgpt_user_id: user.openai.chatgpt_user_id,
    user_id: user.openai.chatgpt_user_id,
    organization_id: user.openai.organization_id,
    project_id: user.openai.project_id
  })

  /** Turn a decided issuance into the token response body (signing the JWTs). */
  const render = (issued: S.Issued): Effect.Effect<Issued> =>
    Effect.gen(function*() {
      const { grant } = issued
      const iat = Math.floor(issued.iat / 1000)
      const exp = Math.floor(issued.accessExp / 1000)
      const accessToken = config.jwtAccessTokens
        ? yield* keys.sign({
          iss: config.issuer,
          sub: grant.user.sub,
          aud: grant.audience !== undefined
            ? [grant.audience]
            : config.flavor === "openai"
            ? ["https://api.openai.com/v1"]
            : [config.issuer],
          client_id: grant.clientId,
          scp: grant.scope.split(" ").filter((x) => x.length > 0),
          iat,
          exp,
          jti: issued.accessId,
          ...(config.flavor === "openai"
            ? {
              "https://api.openai.com/auth": openaiAuthClaim(grant.user),
              "https://api.openai.com/profile": { email: grant.user.email, email_verified: true }
            }
            : {})
        })
        : issued.accessId
      const idToken = grant.scope.split(" ").includes("openid")
        ? yield* keys.sign({
          iss: config.issuer,
          sub: grant.user.sub,
          aud: grant.clientId,
          azp: grant.clientId,
          iat,
          exp,
          auth_time: Math.floor(grant.authTime / 1000),
          ...(issued.nonce === undefined ? {} : { nonce: issued.nonce }),
          email: grant.user.email,
          email_verified: true,
          name: grant.user.name,
          ...(config.flavor === "openai" ? { "https://api.openai.com/auth": openaiAuthClaim(grant.user) } : {})
        })
        : undefined
      return {
        access_token: accessToken,
        token_type: "Bearer",
        expires_in: exp - iat,
        refresh_token: issued.refreshToken,
        ...(idToken === undefined ? {} : { id_token: idToken }),
        scope: grant.scope
      }
    })

  // -- faults -----------------------------------------------------------------------------

  const faultResponse = (f: S.Fault): HttpServerResponse.HttpServerResponse => {
    switch (f._tag) {
      case "Status":
        return json({ error: f.status === 503 ? "temporarily_unavailable" : "server_error", error_description: "injected fault" }, f.status)
      case "RateLimited":
        return json({ error: "rate_limited", error_description: "injected fault" }, 429, { "retry-after": String(f.retryAfter) })
      case "MalformedJson":
        return HttpServerResponse.text(`{"access_token": "tru`, { status: 200, contentType: "application/json" })
      case "Html":
        return HttpServerResponse.text("<!doctype html><html><body><h1>Bad Gateway</h1></body></html>", {
          status: f.status,
          contentType: "text/html; charset=utf-8"
        })
      case "MissingAccessToken":
        return json({ token_type: "Bearer", expires_in: 3600 }, 200, noStore)
      case "InvalidGrant":
        return json({ error: "invalid_grant", error_description: "injected fault" }, 400, noStore)
      case "ConnectionReset":
        return HttpServerResponse.empty({ status: 500, headers: { [RESET_HEADER]: "1" } })
      case "Delay":
        return HttpServerResponse.empty({ status: 500 }) // never answered: delays are handled in `withFaults`
    }
  }

  /**
   * Run `handle` under the next matching fault: a delay sleeps on the server's Clock and
   * then answers normally; any other fault answers instead (before the request is
   * processed, or after it when `afterProcessing`, e.g. a rotation whose answer is lost).
   */
  const withFaults = <R>(
    endpoint: S.FaultEndpoint,
    grant: string | undefined,
    handle: Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
    Effect.gen(function*() {
      const entry = yield* Ref.modify(state, (s) => S.takeFault(s, endpoint, grant))
      if (entry === undefined) return yield* handle
      if (entry.fault._tag === "Delay") {
        const millis = entry.fault.millis
        if (!entry.afterProcessing) yield* clock.sleep(Duration.millis(millis))
        const response = yield* handle
        if (entry.afterProcessing) yield* clock.sleep(Duration.millis(millis))
        return response
      }
      if (entry.afterProcessing) yield* handle
      return faultResponse(entry.fault)
    })

  // -- request parsing ----------------------------------------------------------------------

  type Params = Readonly<Record<string, string>>

  /** The body as string fields: a form always; JSON where the flavor takes it (OpenAI). */
  const readBody = (allowJson: boolean) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const contentType = request.headers["content-type"] ?? ""
      if (contentType.includes("application/json")) {
        if (!allowJson) return Option.none<Params>()
        const body = yield* Effect.option(request.json)
        if (Option.isNone(body) || typeof body.value !== "object" || body.value === null) return Option.none<Params>()
        const out: Record<string, string> = {}
        for (const [k, v] of Object.entries(body.value)) if (typeof v === "string") out[k] = v
        return Option.some<Params>(out)
      }
      const form = yield* Effect.option(request.urlParamsBody)
      if (Option.isNone(form)) return Option.none<Params>()
      const out: Record<string, string> = {}
      for (const [k, v] of form.value) if (!(k in out)) out[k] = v
      return Option.some<Params>(out)
    })

  const searchParams = Effect.map(HttpServerRequest.ParsedSearchParams, (p) => {
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(p)) {
      const first = firstParam(v)
      if (first !== undefined) out[k] = first
    }
    return out as Params
  })

  const basicAuth = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const h = request.headers["authorization"]
    if (h === undefined || !h.toLowerCase().startsWith("basic ")) return undefined
    try {
      const decoded = atob(h.slice(6).trim())
      const i = decoded.indexOf(":")
      if (i < 0) return undefined
      return { id: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)) }
    } catch {
      return undefined
    }
  })

  /** Client authentication: `none` for public clients, client_secret_post (or basic) for confidential ones. */
  const authenticate = (body: Params) =>
    Effect.map(basicAuth, (basic): S.OAuthFailure | S.FakeClient => {
      const clientId = basic?.id ?? body["client_id"]
      if (clientId === undefined) return S.failure("invalid_client", "client_id is required", 401)
      const client = config.clients.find((c) => c.clientId === clientId)
      if (client === undefined) return S.failure("invalid_client", "unknown client", 401)
      if (client.clientSecret !== undefined && (basic?.secret ?? body["client_secret"]) !== client.clientSecret) {
        return S.failure("invalid_client", "client authentication failed", 401)
      }
      return client
    })

  const isFailure = (u: unknown): u is S.OAuthFailure =>
    typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "OAuthFailure"

  const errorResponse = (f: S.OAuthFailure, grantType?: string) =>
    config.flavor === "openai" && f.openaiCode !== undefined && grantType === "refresh_token"
      // OpenAI answers refresh failures with 401 and its own error object (Codex reads `error.code`).
      ? json({ error: { message: f.description, type: "invalid_request_error", param: null, code: f.openaiCode } }, 401, noStore)
      : json({ error: f.error, error_description: f.description }, f.status, noStore)

  // -- discovery and keys -----------------------------------------------------------------

  const metadata = {
    issuer: config.issuer,
    authorization_endpoint: url(paths.authorize),
    token_endpoint: url(paths.token),
    revocation_endpoint: url(paths.revocation),
    introspection_endpoint: url(paths.introspection),
    userinfo_endpoint: url(paths.userinfo),
    jwks_uri: url(paths.jwks),
    ...(config.flavor === "oidc" ? { device_authorization_endpoint: url(paths.deviceAuthorization) } : {}),
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: [
      "authorization_code",
      "refresh_token",
      ...(config.flavor === "oidc" ? ["urn:ietf:params:oauth:grant-type:device_code"] : [])
    ],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["RS256"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["none", "client_secret_post", "client_secret_basic"],
    revocation_endpoint_auth_methods_supported: ["none", "client_secret_post"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified", "name"],
    authorization_response_iss_parameter_supported: config.issParameter,
    ...config.discoveryExtra
  }

  const discovery = Effect.zipRight(count("discovery"), withFaults("discovery", undefined, Effect.succeed(json(metadata))))

  const jwks = Effect.zipRight(count("jwks"), withFaults("jwks", undefined, Effect.map(keys.jwks, (k) => json(k))))

  // -- authorization endpoint -------------------------------------------------------------

  const validRedirect = (client: S.FakeClient, uri: string): boolean => {
    if (client.redirectUris?.includes(uri)) return true
    if (client.allowLoopbackRedirects === false) return false
    let u: URL
    try {
      u = new URL(uri)
    } catch {
      return false
    }
    return u.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname) && u.hash === "" &&
      u.username === "" && u.password === ""
  }

  const redirectTo = (redirectUri: string, params: Record<string, string | undefined>) => {
    const target = new URL(redirectUri)
    for (const [k, v] of Object.entries(params)) if (v !== undefined) target.searchParams.set(k, v)
    if (config.issParameter) target.searchParams.set("iss", config.issuer)
    return HttpServerResponse.redirect(target.toString(), { status: 302, headers: { "cache-control": "no-store" } })
  }

  /** The person said yes (or the server approves by itself): a code, or the configured refusal. */
  const approve = (p: Params) =>
    Effect.gen(function*() {
      const redirectUri = p["redirect_uri"]!
      const refusal = (yield* Ref.get(state)).authorizeError
      if (refusal !== undefined) {
        return redirectTo(redirectUri, { error: refusal.error, error_description: refusal.description, state: p["state"] })
      }
      const code = yield* randomToken(32)
      yield* modify((s, t) => [
        undefined,
        S.addCode(s, code, {
          clientId: p["client_id"]!,
          redirectUri,
          challenge: p["code_challenge"]!,
          nonce: p["nonce"],
          scope: p["scope"] ?? config.defaultScope,
          audience: p["audience"],
          user: s.user,
          exp: t + config.codeTtlMillis,
          used: false,
          grantId: undefined
        })
      ])
      return redirectTo(redirectUri, { code, state: p["state"] })
    })

  const authorize = Effect.gen(function*() {
    yield* count("authorize")
    const p = yield* searchParams
    // Until client and redirect are known good, errors are shown, never redirected (RFC 6749 §4.1.2.1).
    const client = config.clients.find((c) => c.clientId === p["client_id"])
    if (client === undefined) return page("Invalid request", "<p>Unknown or missing client_id.</p>", 400)
    const redirectUri = p["redirect_uri"]
    if (redirectUri === undefined || !validRedirect(client, redirectUri)) {
      return page("Invalid request", "<p>Missing or unregistered redirect_uri.</p>", 400)
    }
    const st = p["state"]
    if (p["response_type"] !== "code") {
      return redirectTo(redirectUri, { error: "unsupported_response_type", error_description: "only response_type=code", state: st })
    }
    if (p["code_challenge"] === undefined || p["code_challenge"].length < 43) {
      return redirectTo(redirectUri, { error: "invalid_request", error_description: "PKCE code_challenge required", state: st })
    }
    if (p["code_challenge_method"] !== "S256") {
      return redirectTo(redirectUri, { error: "invalid_request", error_description: "code_challenge_method must be S256", state: st })
    }
    if (config.autoApprove) return yield* approve(p)
    const id = yield* randomToken(16)
    yield* Ref.update(state, (s) => S.addConsent(s, id, p))
    const decide = (yes: boolean) => escapeHtml(`${url(paths.authorize)}/decision?request=${id}&approve=${yes ? 1 : 0}`)
    return page(
      "Sign in to the fake authorization server",
      `<p>Client <code>${escapeHtml(client.clientId)}</code> asks for <code>${escapeHtml(p["scope"] ?? config.defaultScope)}</code>.</p>` +
        `<p><a id="approve" href="${decide(true)}">Approve</a> <a id="deny" href="${decide(false)}">Deny</a></p>`
    )
  })

  const decision = Effect.gen(function*() {
    const q = yield* searchParams
    const id = q["request"] ?? ""
    const p = yield* Ref.modify(state, (s) => S.takeConsent(s, id))
    if (p === undefined) return page("Invalid request", "<p>Unknown or finished authorization request.</p>", 400)
    if (q["approve"] === "1") return yield* approve(p)
    return redirectTo(p["redirect_uri"]!, { error: "access_denied", error_description: "the user denied the request", state: p["state"] })
  })

  // -- token endpoint ---------------------------------------------------------------------

  const grantOf = (issued: S.OAuthFailure | S.Issued, grantType: string) =>
    isFailure(issued)
      ? Effect.succeed(errorResponse(issued, grantType))
      : Effect.map(render(issued), (body) => json(body, 200, noStore))

  const tokenGrant = (body: Params, client: S.FakeClient) =>
    Effect.gen(function*() {
      const grantType = body["grant_type"]
      const fresh = yield* freshIds
      switch (grantType) {
        case "authorization_code": {
          const code = body["code"]
          if (code === undefined) return errorResponse(S.failure("invalid_request", "code is required"))
          const verifier = body["code_verifier"]
          const challenge = verifier !== undefined && /^[A-Za-z0-9\-._~]{43,128}$/.test(verifier) ? yield* s256(verifier) : undefined
          const result = yield* modify((s, t) =>
            S.exchangeCode(s, t, config.life, fresh, {
              code,
              clientId: client.clientId,
              redirectUri: body["redirect_uri"],
              challengeOfVerifier: challenge
            })
          )
          return yield* grantOf(result, grantType)
        }
        case "refresh_token": {
          const token = body["refresh_token"]
          if (token === undefined) return errorResponse(S.failure("invalid_request", "refresh_token is required"))
          const result = yield* modify((s, t) => S.refresh(s, t, config.life, fresh, { refreshToken: token, clientId: client.clientId }))
          return yield* grantOf(result, grantType)
        }
        case "urn:ietf:params:oauth:grant-type:device_code": {
          const deviceCode = body["device_code"]
          if (deviceCode === undefined) return errorResponse(S.failure("invalid_request", "device_code is required"))
          const result = yield* modify((s, t) => S.pollDevice(s, t, config.life, fresh, { deviceCode, clientId: client.clientId }))
          return yield* grantOf(result, grantType)
        }
        default:
          return errorResponse(S.failure("unsupported_grant_type", "unsupported grant_type"))
      }
    })

  /** RFC 7523: an access token (no refresh token) for a service account whose assertion verifies. */
  const jwtBearerGrant = (body: Params) =>
    Effect.gen(function*() {
      const t = yield* now
      const verified = yield* Effect.promise(() =>
        JwtBearer.verifyAssertion(body["assertion"], config.serviceAccounts, url(paths.token), t)
      )
      if ("_tag" in verified) return errorResponse(verified)
      const fresh = yield* freshIds
      const clientId = config.clients[0]?.clientId ?? verified.clientEmail
      const issued = yield* modify((s, at) => S.mint(s, clientId, verified.scope, fresh, at, config.life))
      const rendered = yield* render(issued)
      return json({ access_token: rendered.access_token, token_type: "Bearer", expires_in: rendered.expires_in }, 200, noStore)
    })

  const countKey = (grantType: string | undefined): keyof S.Counts =>
    grantType === "authorization_code"
      ? "authorizationCode"
      : grantType === "refresh_token"
      ? "refreshToken"
      : grantType === "urn:ietf:params:oauth:grant-type:device_code"
      ? "deviceCode"
      : grantType === JwtBearer.grantType
      ? "jwtBearer"
      : "otherGrant"

  const shortGrant = (grantType: string | undefined): S.GrantType | undefined =>
    grantType === "urn:ietf:params:oauth:grant-type:device_code"
      ? "device_code"
      : grantType === "authorization_code" || grantType === "refresh_token"
      ? grantType
      : undefined

  const token = Effect.gen(function*() {
    // OAuth token endpoints take forms (RFC 6749 §4.1.3); OpenAI's also takes JSON refreshes.
    const body = yield* readBody(config.flavor === "openai")
    const grantType = Option.getOrUndefined(body)?.["grant_type"]
    yield* count(countKey(grantType))
    return yield* withFaults(
      "token",
      shortGrant(grantType),
      Effect.gen(function*() {
        if (Option.isNone(body)) {
          return errorResponse(S.failure("invalid_request", "the body must be application/x-www-form-urlencoded"))
        }
        // A service account authenticates with its signed assertion, not as a client.
        if (grantType === JwtBearer.grantType) return yield* jwtBearerGrant(body.value)
        const client = yield* authenticate(body.value)
        if (isFailure(client)) return errorResponse(client)
        return yield* tokenGrant(body.value, client)
      })
    )
  })

  // -- revocation, introspection, userinfo --------------------------------------------------

  const revocation = Effect.gen(function*() {
    yield* count("revocation")
    const body = yield* readBody(true)
    return yield* withFaults(
      "revocation",
      undefined,
      Effect.gen(function*() {
        const token = Option.getOrUndefined(body)?.["token"]
        if (token === undefined) return errorResponse(S.failure("invalid_request", "token is required"))
        yield* Ref.update(state, (s) => S.revoke(s, accessIdOf(token), token, Option.getOrUndefined(body)?.["client_id"])[1])
        // RFC 7009 §2.2: 200 whether or not the token was known.
        return config.flavor === "openai" ? json({}) : HttpServerResponse.empty({ status: 200 })
      })
    )
  })

  const introspection = Effect.gen(function*() {
    yield* count("introspection")
    const body = yield* readBody(true)
    return yield* withFaults(
      "introspection",
      undefined,
      Effect.gen(function*() {
        const token = Option.getOrUndefined(body)?.["token"]
        if (token === undefined) return errorResponse(S.failure("invalid_request", "token is required"))
        const t = yield* now
        const s = yield* Ref.get(state)
        return json(S.introspect(s, t, accessIdOf(token), token), 200, noStore)
      })
    )
  })

  const userinfo = Effect.gen(function*() {
    yield* count("userinfo")
    const request = yield* HttpServerRequest.HttpServerRequest
    const h = request.headers["authorization"] ?? ""
    const token = h.toLowerCase().startsWith("bearer ") ? h.slice(7).trim() : ""
    const t = yield* now
    const s = yield* Ref.get(state)
    const info = S.introspect(s, t, accessIdOf(token), token)
    if (!info.active || info.token_type !== "access_token") {
      return HttpServerResponse.empty({ status: 401, headers: { "www-authenticate": `Bearer error="invalid_token"` } })
    }
    const grant = S.grantOfAccess(s, accessIdOf(token)!)
    return json({ sub: info.sub, email: grant?.user.email, email_verified: true, name: grant?.user.name })
  })

  // -- device flow ------------------------------------------------------------------------

  const newDevice = (clientId: string, scope: string, audience: string | undefined) =>
    Effect.gen(function*() {
      const deviceCode = yield* randomToken(32)
      const code = yield* userCode
      const rec: S.DeviceRecord = yield* Effect.map(now, (t) => ({
        deviceCode,
        userCode: code,
        clientId,
        scope,
        audience,
        exp: t + config.deviceCodeTtlMillis,
        interval: config.deviceIntervalSeconds,
        status: "pending" as const,
        user: undefined,
        lastPoll: undefined,
        consumed: false
      }))
      yield* Ref.update(state, (s) => S.addDevice(s, rec))
      return rec
    })

  const deviceAuthorization = Effect.gen(function*() {
    yield* count("deviceAuthorization")
    const body = yield* readBody(false)
    return yield* withFaults(
      "device_authorization",
      undefined,
      Effect.gen(function*() {
        if (Option.isNone(body)) return errorResponse(S.failure("invalid_request", "the body must be a form"))
        const client = yield* authenticate(body.value)
        if (isFailure(client)) return errorResponse(client)
        const rec = yield* newDevice(client.clientId, body.value["scope"] ?? config.defaultScope, body.value["audience"])
        const verification = url(paths.deviceVerification)
        return json(
          {
            device_code: rec.deviceCode,
            user_code: rec.userCode,
            verification_uri: verification,
            verification_uri_complete: `${verification}?user_code=${encodeURIComponent(rec.userCode)}`,
            expires_in: Math.floor(config.deviceCodeTtlMillis / 1000),
            interval: rec.interval
          },
          200,
          noStore
        )
      })
    )
  })

  /** OpenAI's `deviceauth/usercode`: JSON in and out; `interval` is a string, as OpenAI sends it. */
  const openaiUserCode = Effect.gen(function*() {
    yield* count("deviceAuthorization")
    const body = yield* readBody(true)
    return yield* withFaults(
      "device_authorization",
      undefined,
      Effect.gen(function*() {
        const clientId = Option.getOrUndefined(body)?.["client_id"]
        const client = config.clients.find((c) => c.clientId === clientId)
        if (client === undefined) return json({ error: { message: "unknown client", code: "invalid_client" } }, 404)
        const rec = yield* newDevice(client.clientId, config.defaultScope, undefined)
        return json({ device_auth_id: rec.deviceCode, user_code: rec.userCode, interval: String(rec.interval) }, 200, noStore)
      })
    )
  })

  /** OpenAI's `deviceauth/token`: 403 while pending, then a code and its verifier. */
  const openaiDeviceToken = Effect.gen(function*() {
    yield* count("deviceCode")
    const body = Option.getOrElse(yield* readBody(true), (): Params => ({}))
    const code = yield* randomToken(32)
    const verifier = yield* randomToken(64)
    const challenge = yield* s256(verifier)
    const result = yield* modify((s, t) =>
      S.pollOpenAiDevice(s, t, { deviceAuthId: body["device_auth_id"] ?? "", userCode: body["user_code"] ?? "" }, {
        code,
        verifier,
        challenge,
        redirectUri: url("/deviceauth/callback"),
        ttlMillis: config.codeTtlMillis
      })
    )
    switch (result._tag) {
      case "Pending":
        return json({ error: { message: "Device authorization is pending", code: "deviceauth_authorization_pending" } }, 403)
      case "NotFound":
        return json({ error: { message: "Unknown device authorization", code: "not_found" } }, 404)
      case "OAuthFailure":
        return json({ error: result.error, error_description: result.description }, result.status)
      case "Code":
        return json({ authorization_code: code, code_verifier: verifier, code_challenge: challenge }, 200, noStore)
    }
  })

  /** Where a person types the user code; `?user_code=…&approve=1` (or `approve=0`) answers from a script. */
  const deviceVerification = Effect.gen(function*() {
    const q = yield* searchParams
    const code = q["user_code"]
    const path = escapeHtml(url(paths.deviceVerification))
    if (code === undefined) {
      return page(
        "Device login",
        `<form method="get" action="${path}"><input name="user_code"><button name="approve" value="1">Approve</button><button name="approve" value="0">Deny</button></form>`
      )
    }
    const answer = q["approve"] === "1" ? true : q["approve"] === "0" || q["deny"] === "1" ? false : undefined
    if (answer === undefined) {
      const c = encodeURIComponent(code)
      return page(
        "Device login",
        `<p>Code <code>${escapeHtml(code)}</code></p><p><a id="approve" href="${path}?user_code=${c}&amp;approve=1">Approve</a> <a id="deny" href="${path}?user_code=${c}&amp;approve=0">Deny</a></p>`
      )
    }
    const ok = yield* modify((s, t) => S.decideDevice(s, t, code, answer))
    return ok
      ? page(answer ? "Device approved" : "Device denied", "<p>You can close this window.</p>")
      : page("Unknown code", "<p>The code is unknown, expired or already answered.</p>", 400)
  })

  const notFound = json({ error: "not_found", error_description: "no such endpoint on the fake authorization server" }, 404)

  let router = HttpRouter.empty.pipe(
    HttpRouter.get("/.well-known/openid-configuration", discovery),
    HttpRouter.get("/.well-known/oauth-authorization-server", discovery),
    HttpRouter.get(paths.jwks as HttpRouter.PathInput, jwks),
    HttpRouter.get(paths.authorize as HttpRouter.PathInput, authorize),
    HttpRouter.get(`${paths.authorize}/decision` as HttpRouter.PathInput, decision),
    HttpRouter.post(paths.token as HttpRouter.PathInput, token),
    HttpRouter.post(paths.revocation as HttpRouter.PathInput, revocation),
    HttpRouter.post(paths.introspection as HttpRouter.PathInput, introspection),
    HttpRouter.get(paths.userinfo as HttpRouter.PathInput, userinfo),
    HttpRouter.get(paths.deviceVerification as HttpRouter.PathInput, deviceVerification)
  )
  router = config.flavor === "openai"
    ? router.pipe(
      HttpRouter.post(paths.deviceAuthorization as HttpRouter.PathInput, openaiUserCode),
      HttpRouter.post(paths.deviceToken as HttpRouter.PathInput, openaiDeviceToken),
      // The same approval page under the name the RFC 8628 flavor uses, for scripts.
      HttpRouter.get("/device", deviceVerification)
    )
    : router.pipe(HttpRouter.post(paths.deviceAuthorization as HttpRouter.PathInput, deviceAuthorization))

  const serverError = (reason: string) =>
    json({ error: "server_error", error_description: `fake authorization server: ${reason}` }, 500)
  const app = router.pipe(
    Effect.catchAll((e) => Effect.succeed(e._tag === "RouteNotFound" ? notFound : serverError(e._tag))),
    Effect.catchAllDefect((defect) => Effect.succeed(serverError(String(defect))))
  )
  return { app, render }
}
