/**
 * A fake authorization server's token and revocation endpoints as an `HttpClient` layer:
 * no socket, every time rule under `TestClock` (delays are `Effect.sleep`). It counts
 * calls, rotates single-use refresh tokens (a replayed one gets `invalid_grant` or the
 * code chosen), captures each body as JSON or form, and plays scripted faults in order.
 */
import { HttpClient, HttpClientError, HttpClientResponse } from "@effect/platform"
import type { HttpClientRequest } from "@effect/platform"
import { DateTime, Duration, Effect, Layer, Redacted } from "effect"
import { AccountClaims, OAuthCredential, TokenSet } from "../../src/Domain.js"
import { type DiscoveryError, UnknownProvider } from "../../src/Errors.js"
import { AuthServerMetadata, type ProviderConfig } from "../../src/Provider.js"
import { ProviderRegistry } from "../../src/ProviderRegistry.js"

export const ISSUER = "http://127.0.0.1:4444"
export const TOKEN_ENDPOINT = `${ISSUER}/token`
export const REVOCATION_ENDPOINT = `${ISSUER}/revoke`

export interface RecordedRequest {
  readonly path: string
  readonly format: "json" | "form" | "none"
  /** The body's fields as the server saw them (plain: this is the server side). */
  readonly body: Readonly<Record<string, string>>
}

export type Fault =
  /** Answer this status (with an OAuth error body when `error` is given). */
  | { readonly _tag: "Status"; readonly status: number; readonly error?: string; readonly headers?: Record<string, string> }
  /** The connection fails. */
  | { readonly _tag: "NetworkError" }
  /** Wait (on the Clock), then answer normally. */
  | { readonly _tag: "Delay"; readonly duration: Duration.DurationInput }
  /** Process the request at once (a refresh token rotates), then wait (on the Clock) before answering. */
  | { readonly _tag: "AnswerAfter"; readonly duration: Duration.DurationInput }
  /** Process the request (a refresh token rotates), then the connection fails: the answer is lost. */
  | { readonly _tag: "LostAfter" }

export interface FakeOptions {
  /** Lifetime of issued access tokens, seconds (default 3600). */
  readonly expiresIn?: number
  /** `expires_in` exactly as it appears in the answer's JSON text (`1e309`, `"3600"`); `null` leaves it out. */
  readonly expiresInJson?: string | null
  /** Issue a new refresh token on each refresh and invalidate the old one (default true). */
  readonly rotate?: boolean
  /** The error code for a refresh token that is not (or no longer) valid (default `invalid_grant`). */
  readonly reuseError?: string
  /** Refresh tokens valid at the start (default `["rt-0"]`). */
  readonly validRefreshTokens?: ReadonlyArray<string>
}

export interface FakeTokenEndpoint {
  readonly layer: Layer.Layer<HttpClient.HttpClient>
  /** Every request received, faulted ones included, in order. */
  readonly requests: Array<RecordedRequest>
  /** Requests that reached the token endpoint (counted on arrival). */
  readonly tokenCalls: () => number
  /** Refresh grants answered with new tokens. */
  readonly issued: () => number
  readonly revocations: () => ReadonlyArray<RecordedRequest>
  /** Queue faults; each applies to one request, in order. */
  readonly fault: (...faults: ReadonlyArray<Fault>) => void
  /** Access tokens issued so far, in order (`at-1`, `at-2`, …). */
  readonly accessTokens: Array<string>
}

const EXPIRES_IN_SLOT = "\u0000expires_in\u0000"

const json = (
  request: HttpClientRequest.HttpClientRequest,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  expiresInJson?: string | null
) =>
  HttpClientResponse.fromWeb(
    request,
    new Response(body === undefined ? "" : rawJson(body, expiresInJson), {
      status,
      headers: { "content-type": "application/json", ...headers }
    })
  )

/** The body's JSON text, with `expires_in` replaced by raw text when asked (JSON.stringify cannot write `1e309`). */
const rawJson = (body: unknown, expiresInJson: string | null | undefined): string => {
  const text = JSON.stringify(body)
  if (expiresInJson === undefined) return text
  return expiresInJson === null
    ? text.replace(`,"expires_in":${JSON.stringify(EXPIRES_IN_SLOT)}`, "")
    : text.replace(JSON.stringify(EXPIRES_IN_SLOT), expiresInJson)
}

const readBody = (request: HttpClientRequest.HttpClientRequest): Pick<RecordedRequest, "format" | "body"> => {
  if (request.body._tag !== "Uint8Array") return { format: "none", body: {} }
  const text = new TextDecoder().decode(request.body.body)
  if (request.body.contentType.startsWith("application/json")) {
    return { format: "json", body: JSON.parse(text) as Record<string, string> }
  }
  return { format: "form", body: Object.fromEntries(new URLSearchParams(text)) }
}

export const make = (options: FakeOptions = {}): FakeTokenEndpoint => {
  const expiresIn = options.expiresIn ?? 3600
  const rotate = options.rotate ?? true
  const reuseError = options.reuseError ?? "invalid_grant"
  const valid = new Set(options.validRefreshTokens ?? ["rt-0"])
  const requests: Array<RecordedRequest> = []
  const faults: Array<Fault> = []
  const accessTokens: Array<string> = []
  let issued = 0

  const answer = (request: HttpClientRequest.HttpClientRequest, url: URL, body: Record<string, string>) => {
    if (url.pathname === "/revoke") return json(request, 200, undefined)
    if (url.pathname !== "/token") return json(request, 404, { error: "not_found" })
    if (body["grant_type"] !== "refresh_token") return json(request, 400, { error: "unsupported_grant_type" })
    const presented = body["refresh_token"] ?? ""
    if (!valid.has(presented)) return json(request, 400, { error: reuseError, error_description: "refresh token not valid" })
    issued += 1
    const accessToken = `at-${issued}`
    accessTokens.push(accessToken)
    let refreshToken: string | undefined
    if (rotate) {
      valid.delete(presented)
      refreshToken = `rt-${issued}`
      valid.add(refreshToken)
    }
    return json(request, 200, {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: options.expiresInJson === undefined ? expiresIn : EXPIRES_IN_SLOT,
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken })
    }, {}, options.expiresInJson)
  }

  const client = HttpClient.make((request, url) =>
    Effect.suspend(() => {
      const { body, format } = readBody(request)
      requests.push({ path: url.pathname, format, body })
      const fault = faults.shift()
      if (fault === undefined) return Effect.sync(() => answer(request, url, body))
      switch (fault._tag) {
        case "Delay":
          return Effect.zipRight(Effect.sleep(fault.duration), Effect.sync(() => answer(request, url, body)))
        case "NetworkError":
          return Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "fake: connection refused" }))
        case "AnswerAfter": {
          const response = answer(request, url, body)
          return Effect.as(Effect.sleep(fault.duration), response)
        }
        case "LostAfter":
          answer(request, url, body)
          return Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "fake: connection reset" }))
        case "Status":
          return Effect.succeed(
            json(request, fault.status, fault.error === undefined ? undefined : { error: fault.error }, fault.headers)
          )
      }
    })
  )

  return {
    layer: Layer.succeed(HttpClient.HttpClient, client),
    requests,
    tokenCalls: () => requests.filter((r) => r.path === "/token").length,
    issued: () => issued,
    revocations: () => requests.filter((r) => r.path === "/revoke"),
    fault: (...more) => {
      faults.push(...more)
    },
    accessTokens
  }
}

/** The fake's endpoints as metadata; `revocation: false` drops the revocation endpoint. */
export const metadata = (options: { readonly revocation?: boolean } = {}): AuthServerMetadata =>
  AuthServerMetadata.make({
    issuer: ISSUER,
    authorization_endpoint: `${ISSUER}/authorize`,
    token_endpoint: TOKEN_ENDPOINT,
    ...(options.revocation === false ? {} : { revocation_endpoint: REVOCATION_ENDPOINT })
  })

/** A registry over `providers`, each served by the fake (no discovery). */
export const registryLayer = (
  providers: ReadonlyArray<ProviderConfig>,
  meta: (provider: ProviderConfig) => Effect.Effect<AuthServerMetadata, DiscoveryError> = () =>
    Effect.succeed(metadata())
): Layer.Layer<ProviderRegistry> =>
  Layer.succeed(ProviderRegistry, {
    list: providers,
    listAll: Effect.succeed(providers),
    get: (id) => {
      const p = providers.find((x) => x.id === id)
      return p === undefined ? Effect.fail(new UnknownProvider({ provider: id, known: providers.map((x) => x.id) })) : Effect.succeed(p)
    },
    metadata: meta
  })

/** A stored login, as a PKCE login would have left it. */
export const login = (options: {
  readonly provider: string
  readonly account?: string
  readonly accessToken?: string
  readonly refreshToken?: string | null
  /** Epoch milliseconds; omit for a token without expiry. */
  readonly expiresAt?: number
  readonly accountId?: string
  readonly obtainedAt?: number
}): OAuthCredential =>
  OAuthCredential.make({
    provider: options.provider,
    account: options.account ?? "user@example.com",
    tokens: TokenSet.make({
      accessToken: Redacted.make(options.accessToken ?? "at-0"),
      ...(options.refreshToken === null ? {} : { refreshToken: Redacted.make(options.refreshToken ?? "rt-0") }),
      ...(options.expiresAt === undefined ? {} : { expiresAt: DateTime.unsafeMake(options.expiresAt) }),
      scopes: ["openid", "offline_access"],
      tokenType: "Bearer"
    }),
    claims: AccountClaims.make({
      email: "user@example.com",
      ...(options.accountId === undefined ? {} : { accountId: options.accountId })
    }),
    obtainedAt: DateTime.unsafeMake(options.obtainedAt ?? 0)
  })
