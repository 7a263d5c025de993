/**
 * The one client of token endpoints: every grant (authorization code, refresh, device)
 * goes through `requestTokens`, so error mapping and secret handling exist once.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Clock, Duration, Effect, Option, Redacted, Schema } from "effect"
import { Secret } from "../Domain.js"
import { NetworkError, TokenEndpointError } from "../Errors.js"
import type { ProviderConfig } from "../Provider.js"
import { isRedirect, readJsonBounded, redirectReason, tooLargeReason, withoutRedirects } from "./http.js"
import { sanitize } from "./text.js"

/** A token response (RFC 6749 §5.1). Every field optional on refresh (OpenAI may omit any). */
export const TokenResponse = Schema.Struct({
  access_token: Secret,
  token_type: Schema.optional(Schema.String),
  /** Checked where it is used (internal/tokenSet.ts): providers send odd values, and a string at times. */
  expires_in: Schema.optional(Schema.Unknown),
  refresh_token: Schema.optional(Secret),
  id_token: Schema.optional(Secret),
  scope: Schema.optional(Schema.String)
})
export type TokenResponse = typeof TokenResponse.Type

/** An OAuth error body (RFC 6749 §5.2); OpenAI nests it as `{error: {code, message}}` at times. */
const ErrorBody = Schema.Struct({
  error: Schema.optional(Schema.Union(
    Schema.String,
    Schema.Struct({ code: Schema.optional(Schema.String), message: Schema.optional(Schema.String) })
  )),
  error_description: Schema.optional(Schema.String)
})

export const parseOAuthError = (body: unknown): { error?: string; description?: string } => {
  const decoded = Schema.decodeUnknownOption(ErrorBody)(body)
  if (Option.isNone(decoded)) return {}
  const e = decoded.value.error
  const error = typeof e === "string" ? e : e?.code
  const description = decoded.value.error_description ?? (typeof e === "object" ? e.message : undefined)
  // The provider's words reach a terminal: no escape sequence or control character gets through.
  return {
    ...(error === undefined ? {} : { error: sanitize(error, 100) }),
    ...(description === undefined ? {} : { description: sanitize(description, 300) })
  }
}

/** Seconds from a `Retry-After` header (delta-seconds form; dates are rare on token endpoints). */
export const retryAfterSeconds = (value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const n = Number(value.trim())
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

export type Body = Readonly<Record<string, string | Redacted.Redacted<string> | undefined>>

/** A URL as logs show it: origin and path only (a query, fragment or user info could carry a secret). */
export const logUrl = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return "(not a URL)"
  }
}

/**
 * The `--verbose` trace of one exchange: endpoint, method, status, duration, and the body's
 * non-secret parameters (grant type, token type hint) — never a body, a header or a token.
 */
const trace = (
  provider: ProviderConfig,
  endpoint: string,
  body: Body,
  startedMillis: number,
  outcome: Readonly<Record<string, string | number>>
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.logDebug(`POST ${logUrl(endpoint)}`).pipe(
      Effect.annotateLogs({
        provider: provider.id,
        method: "POST",
        endpoint: logUrl(endpoint),
        ...(typeof body.grant_type === "string" ? { grant_type: body.grant_type } : {}),
        ...(typeof body.token_type_hint === "string" ? { token_type_hint: body.token_type_hint } : {}),
        ...outcome,
        duration_ms: now - startedMillis
      })
    ))

const reveal = (body: Body): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(body)) {
    if (v !== undefined) out[k] = Redacted.isRedacted(v) ? Redacted.value(v) : v
  }
  return out
}

/**
 * The one HTTP exchange with a token-like endpoint: POST `body` (secrets revealed only into
 * the request), trace it, and map every failure to our errors; nothing secret reaches one.
 * A 2xx answer gives its status and JSON body (if it had one). `timeout` bounds the whole
 * exchange, so a provider that trickles its answer cannot hang a login or a logout.
 */
const exchange = (
  provider: ProviderConfig,
  endpoint: string,
  body: Body,
  format: "form" | "json",
  timeout: Duration.DurationInput,
  traced: Body = body,
  headers: Readonly<Record<string, Redacted.Redacted<string>>> = {}
): Effect.Effect<{ readonly status: number; readonly json: Option.Option<unknown> }, TokenEndpointError | NetworkError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const plain = reveal(body)
    const request = HttpClientRequest.post(endpoint).pipe(
      HttpClientRequest.acceptJson,
      HttpClientRequest.setHeaders(reveal(headers)),
      format === "json" ? HttpClientRequest.bodyUnsafeJson(plain) : HttpClientRequest.bodyUrlParams(plain)
    )
    const network = (reason: string, final?: true) => new NetworkError({ provider: provider.id, endpoint, reason, final })
    const started = yield* Clock.currentTimeMillis
    // The body carries a secret (a code, a verifier, a refresh token, a client secret): a
    // redirect would re-send it wherever the answer points, so it is refused, not followed.
    return yield* withoutRedirects(client.execute(request)).pipe(
      Effect.catchTag("RequestError", (e) => Effect.fail(network(e.reason === "Transport" ? "connection failed" : e.reason))),
      Effect.tapError((e) => trace(provider, endpoint, traced, started, { failed: e.reason })),
      Effect.flatMap((response) =>
        Effect.gen(function*() {
          if (isRedirect(response.status)) {
            yield* trace(provider, endpoint, traced, started, { status: response.status, refused: "redirect" })
            return yield* network(redirectReason(response), true)
          }
          const json = yield* readJsonBounded(response).pipe(
            Effect.catchTag("TooLarge", (e) => Effect.fail(network(tooLargeReason(e.limit), true))),
            Effect.catchTag("ResponseError", () => Effect.succeed(Option.none()))
          )
          const oauth = response.status >= 400 && Option.isSome(json) ? parseOAuthError(json.value) : {}
          yield* trace(provider, endpoint, traced, started, {
            status: response.status,
            ...(oauth.error === undefined ? {} : { error: oauth.error })
          })
          if (response.status >= 200 && response.status < 300) return { status: response.status, json }
          const retryAfter = retryAfterSeconds(response.headers["retry-after"])
          return yield* new TokenEndpointError({
            provider: provider.id,
            endpoint,
            status: response.status,
            ...oauth,
            ...(retryAfter === undefined ? {} : { retryAfter })
          })
        })
      ),
      Effect.catchTag("ResponseError", (e) => Effect.fail(network(`unreadable answer (${e.reason})`))),
      Effect.scoped,
      Effect.timeoutFail({ duration: timeout, onTimeout: () => network(`no answer within ${Duration.format(timeout)}`) })
    )
  })

/** POST to a token-like endpoint and return the JSON body of a 2xx answer. */
export const postJson = (
  provider: ProviderConfig,
  endpoint: string,
  body: Body,
  format: "form" | "json",
  timeout: Duration.DurationInput = Duration.seconds(30),
  headers: Readonly<Record<string, Redacted.Redacted<string>>> = {}
): Effect.Effect<unknown, TokenEndpointError | NetworkError, HttpClient.HttpClient> =>
  Effect.flatMap(exchange(provider, endpoint, body, format, timeout, body, headers), ({ json, status }) =>
    Option.isSome(json)
      ? Effect.succeed(json.value)
      : Effect.fail(new NetworkError({ provider: provider.id, endpoint, reason: `HTTP ${status} with a body that is not JSON` })))

/**
 * Request tokens with a grant and decode the answer. Every grant carries the provider's
 * RFC 8707 `resource` when it has one (code, refresh and device alike: a token must stay
 * bound to the one resource it was asked for).
 */
export const requestTokens = (
  provider: ProviderConfig,
  endpoint: string,
  body: Body,
  format: "form" | "json",
  timeout?: Duration.DurationInput
): Effect.Effect<TokenResponse, TokenEndpointError | NetworkError, HttpClient.HttpClient> => {
  const auth = clientAuth(provider, provider.resource === undefined ? body : { ...body, resource: provider.resource })
  return postJson(provider, endpoint, auth.body, format, timeout, auth.headers).pipe(
    Effect.flatMap((json) =>
      Schema.decodeUnknown(TokenResponse)(json).pipe(
        Effect.mapError(() =>
          new NetworkError({ provider: provider.id, endpoint, reason: "the answer is not a token response (no access_token)" })
        )
      )
    )
  )
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded. */
const basicCredentials = (clientId: string, secret: Redacted.Redacted<string>): Redacted.Redacted<string> => {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")
  return Redacted.make(`Basic ${btoa(`${enc(clientId)}:${enc(Redacted.value(secret))}`)}`)
}

/**
 * How the client authenticates, as its registration says (`tokenEndpointAuthMethod`):
 * `client_secret_basic` in the Authorization header, `client_secret_post` in the body, `none`
 * with `client_id` alone. Unset: the secret, when there is one, goes in the body (installed
 * apps with a non-confidential secret), else `client_id` alone. A method that needs a secret
 * the provider lacks sends `client_id` alone: the server then refuses, and says so.
 */
export const clientAuth = (
  provider: ProviderConfig,
  body: Body
): { readonly body: Body; readonly headers: Readonly<Record<string, Redacted.Redacted<string>>> } => {
  const secret = provider.clientSecret
  const method = provider.tokenEndpointAuthMethod ?? (secret === undefined ? "none" : "client_secret_post")
  if (method === "client_secret_basic" && secret !== undefined && provider.clientId !== undefined) {
    return { body, headers: { authorization: basicCredentials(provider.clientId, secret) } }
  }
  return {
    body: {
      client_id: provider.clientId,
      ...(method === "client_secret_post" && secret !== undefined ? { client_secret: secret } : {}),
      ...body
    },
    headers: {}
  }
}


/**
 * POST an RFC 7009 revocation request. Any 2xx is success whatever the body (revocation
 * endpoints usually answer 200 with an empty body, which `postJson` would refuse); other
 * answers map to the same errors as the token endpoint. One attempt, bounded by `timeout`
 * over the whole exchange: logout must not hang on a provider.
 */
export const postRevocation = (
  provider: ProviderConfig,
  endpoint: string,
  body: Body,
  format: "form" | "json",
  timeout: Duration.DurationInput = Duration.seconds(10)
): Effect.Effect<void, TokenEndpointError | NetworkError, HttpClient.HttpClient> => {
  const auth = clientAuth(provider, body)
  return Effect.asVoid(exchange(provider, endpoint, auth.body, format, timeout, body, auth.headers))
}
