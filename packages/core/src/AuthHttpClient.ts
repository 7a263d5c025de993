/**
 * `HttpClient` middleware for agent runtimes: every request carries the credential
 * `CredentialResolver.resolve` gives for one provider (and optional account), and a 401
 * forces one refresh and one retry.
 *
 * Per request:
 * 1. `resolve(provider)` — a fresh token costs no I/O (the resolver and `Refresher` cache).
 * 2. Where it goes, and whether the credential goes with it:
 *    - a relative URL (`/responses`, `responses`) is joined to the credential's `baseUrl`
 *      (`https://chatgpt.com/backend-api/codex` + `/responses`) and carries the headers;
 *    - an absolute URL is left as it is and carries the headers only when it lies under the
 *      `baseUrl` (same origin, path inside the base path): a credential is never sent to
 *      another host, and a request to another host is passed through untouched.
 *    The credential's headers (`Redacted`) are revealed only into the outgoing request and
 *    replace headers of the same name. A request carrying them never follows a redirect
 *    (`fetch` would forward `x-api-key` to wherever it points): a 3xx is a `NetworkError`.
 * 3. A 401 to a request that carried an OAuth token: when another fiber has already
 *    refreshed, the newer token is used; otherwise `resolve(provider, { forceRefresh: true })`.
 *    One retry. A second 401 fails with `ReauthRequired`. A 401 to an API key is not
 *    retried (there is nothing to refresh): `ReauthRequired` naming where the key came from.
 *    A 401 to a request that carried no credential is returned as it is; so is a 401 to a
 *    request with a streamed body (it cannot be sent twice), after the refresh.
 *
 * Three shapes:
 * - `make` / `wrap`: a client whose error channel adds `AuthError` (typed `ReauthRequired`,
 *   `NotLoggedIn`, …) — for runtimes that call the client themselves.
 * - `withCredential` / `layer`: a plain `HttpClient` (for `@effect/ai-openai`'s
 *   `transformClient`, or to replace the ambient `HttpClient`); there an `AuthError` travels
 *   as an `HttpClientError.RequestError` (reason `Transport`, the error's message as its
 *   description, the error itself as its `cause`, no credential in its request), and
 *   `authError` finds it again, through `AiError` wrappers too.
 *
 * No recursion: the resolver and refresher take their `HttpClient` when they are built, so
 * `layer` wraps only what sits above them. Even when a wrapped client is handed to them by
 * mistake, a request made while a credential is being resolved (a token-endpoint call)
 * passes through untouched instead of asking for the credential it is fetching.
 */
import { HttpClient, HttpClientError, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { Effect, FiberRef, Inspectable, Layer, Option, Predicate, Redacted } from "effect"
import { globalValue } from "effect/GlobalValue"
import { type CredentialResolverShape, CredentialResolver } from "./CredentialResolver.js"
import type { Credential } from "./Domain.js"
import * as Errors from "./Errors.js"
import { isRedirect, redirectReason, withoutRedirects } from "./internal/http.js"
import { logUrl } from "./internal/tokenEndpoint.js"

export interface Options {
  /** Use this stored account only (environment and config.json keys belong to no account). */
  readonly account?: string | undefined
}

/** What `apply` decided for one request. */
export interface Applied {
  /** The request as sent: URL resolved, headers set when `carries`. */
  readonly request: HttpClientRequest.HttpClientRequest
  /** Whether the credential's headers were set. */
  readonly carries: boolean
}

const SCHEME = /^[a-z][a-z0-9+.-]*:/i

/** `base` + `path` with exactly one slash between them. */
const join = (base: string, path: string): string => {
  if (path === "") return base
  return `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`
}

/**
 * Whether an absolute URL lies under the base URL: same origin (scheme, host, port, after
 * normalisation, so `https://chatgpt.com@evil.example/` is not chatgpt.com) and a path equal
 * to the base path or below it on a segment boundary (`/v1x` is not under `/v1`).
 */
export const isUnderBase = (url: string, baseUrl: string): boolean => underBase(baseUrl)(url)

/** `isUnderBase` with the base parsed once, for a caller that asks of many URLs (a fetch's every request). */
export const underBase = (baseUrl: string): (url: string) => boolean => {
  let base: URL
  try {
    base = new URL(baseUrl)
  } catch {
    return () => false
  }
  const origin = base.origin
  const basePath = base.pathname.replace(/\/+$/, "")
  return (url) => {
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return false
    }
    if (target.origin !== origin || origin === "null") return false
    return basePath === "" || target.pathname === basePath || target.pathname.startsWith(`${basePath}/`)
  }
}

/** The request with a relative URL joined to the credential's base URL; nothing else changed. */
const resolveUrl = (request: HttpClientRequest.HttpClientRequest, credential: Credential) =>
  SCHEME.test(request.url) ? request : HttpClientRequest.setUrl(request, join(credential.baseUrl, request.url))

/** Resolves the request's URL against the credential and sets its headers where they belong. */
export const apply = (request: HttpClientRequest.HttpClientRequest, credential: Credential): Applied => {
  const relative = !SCHEME.test(request.url)
  const target = resolveUrl(request, credential)
  const carries = relative || isUnderBase(request.url, credential.baseUrl)
  if (!carries) return { request: target, carries }
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(credential.headers)) headers[name] = Redacted.value(value)
  return { request: HttpClientRequest.setHeaders(target, headers), carries }
}

/**
 * `response` itself (every read goes through to it), except that its `request`, and the
 * request in its printed forms, is `shown`.
 */
const showing = (
  response: HttpClientResponse.HttpClientResponse,
  shown: HttpClientRequest.HttpClientRequest
): HttpClientResponse.HttpClientResponse => {
  const json = () => ({ ...(response.toJSON() as object), request: shown.toJSON() })
  return Object.create(response, {
    request: { value: shown, enumerable: true },
    toJSON: { value: json },
    toString: { value: () => Inspectable.format(json()) },
    [Inspectable.NodeInspectSymbol]: { value: json }
  })
}

/**
 * The outcome of a request that carried the credential, with the credential hidden from the
 * response and from errors: they hold the request, and Effect redacts `authorization` only
 * inside its loggers, so a runtime's `console.error(error)` or `JSON.stringify(error)` would
 * print the token.
 */
const hideCredential = (request: HttpClientRequest.HttpClientRequest, sent: Applied, credential: Credential) =>
<A extends HttpClientResponse.HttpClientResponse, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<HttpClientResponse.HttpClientResponse, E, R> => {
  if (!sent.carries) return effect
  // Where it went, as the caller asked for it: without the credential's headers.
  const shown = resolveUrl(request, credential)
  const details = (e: { readonly cause?: unknown; readonly description?: string | undefined }) => ({
    ...(e.cause === undefined ? {} : { cause: e.cause }),
    ...(e.description === undefined ? {} : { description: e.description })
  })
  return effect.pipe(
    Effect.map((response) => showing(response, shown)),
    Effect.mapError((e): E => {
      if (!HttpClientError.isHttpClientError(e)) return e
      return (e._tag === "RequestError"
        ? new HttpClientError.RequestError({ request: shown, reason: e.reason, ...details(e) })
        : new HttpClientError.ResponseError({ request: shown, response: showing(e.response, shown), reason: e.reason, ...details(e) })) as E
    })
  )
}

/**
 * Sends a request that carries the credential: `fetch` is told not to follow redirects
 * (it would forward `x-api-key` and any other custom header to wherever the answer points),
 * and a 3xx is a `NetworkError` saying so, never a response the caller might follow itself.
 */
const sendCarrying = <E, R>(
  client: HttpClient.HttpClient.With<E, R>,
  provider: string,
  applied: Applied
): Effect.Effect<HttpClientResponse.HttpClientResponse, E | Errors.NetworkError, R> => {
  if (!applied.carries) return client.execute(applied.request)
  return withoutRedirects(client.execute(applied.request)).pipe(
    Effect.flatMap((response) =>
      isRedirect(response.status)
        ? Effect.fail(new Errors.NetworkError({ provider, endpoint: logUrl(applied.request.url), reason: redirectReason(response), final: true }))
        : Effect.succeed(response)
    )
  )
}

/** True while a credential is being resolved in this fiber (and its children). */
const resolving = globalValue("@agent-auth/core/AuthHttpClient/resolving", () => FiberRef.unsafeMake(false))

const secretOf = (c: Credential): string => Redacted.value(c._tag === "ApiKey" ? c.key : c.token)

const keyRefused = (c: Credential & { readonly _tag: "ApiKey" }): Errors.ReauthRequired => {
  const where = c.source._tag === "Env"
    ? `the API key in ${c.source.variable}`
    : c.source._tag === "Config"
    ? `the API key in ${c.source.path} (apiKeys.${c.provider})`
    : "the stored API key"
  return new Errors.ReauthRequired({ provider: c.provider, reason: `${where} was refused (HTTP 401)` })
}

/**
 * Sends `request` through `client` with the credential, applying the 401 rule above.
 * The building block of every shape in this module.
 */
export const send = <E, R>(
  client: HttpClient.HttpClient.With<E, R>,
  resolver: CredentialResolverShape,
  provider: string,
  options: Options = {}
) => {
  const resolve = (forceRefresh: boolean) =>
    Effect.locally(
      resolver.resolve(provider, { account: options.account, forceRefresh }),
      resolving,
      true
    )

  return (request: HttpClientRequest.HttpClientRequest): Effect.Effect<
    HttpClientResponse.HttpClientResponse,
    E | Errors.AuthError,
    R
  > =>
    Effect.flatMap(FiberRef.get(resolving), (inside): Effect.Effect<HttpClientResponse.HttpClientResponse, E | Errors.AuthError, R> => {
      if (inside) return client.execute(request)
      return Effect.gen(function*() {
        const first = yield* resolve(false)
        const applied = apply(request, first)
        const response = yield* sendCarrying(client, provider, applied).pipe(hideCredential(request, applied, first))
        if (response.status !== 401 || !applied.carries) return response
        if (first._tag === "ApiKey") return yield* Effect.fail(keyRefused(first))
        yield* Effect.logDebug(`${provider}: the model API answered 401; refreshing once and retrying`)
        // Another fiber may have refreshed since this request left: use its token rather than refresh again.
        const current = yield* resolve(false)
        const second = secretOf(current) !== secretOf(first) ? current : yield* resolve(true)
        // A streamed body was consumed by the first attempt and cannot be sent again: the
        // caller gets the 401, and its next request the new token.
        if (request.body._tag === "Stream") return response
        const retried = apply(request, second)
        const again = yield* sendCarrying(client, provider, retried).pipe(hideCredential(request, retried, second))
        if (again.status !== 401 || !retried.carries) return again
        if (second._tag === "ApiKey") return yield* Effect.fail(keyRefused(second))
        return yield* Effect.fail(
          new Errors.ReauthRequired({
            provider,
            account: second.account,
            reason: "the model API refused the token again after a refresh (HTTP 401)"
          })
        )
      })
    })
}

/** `client` with the credential on every request; `AuthError` in its error channel. */
export const wrap = <E, R>(
  client: HttpClient.HttpClient.With<E, R>,
  resolver: CredentialResolverShape,
  provider: string,
  options: Options = {}
): HttpClient.HttpClient.With<E | Errors.AuthError, R> => {
  const go = send(client, resolver, provider, options)
  return HttpClient.makeWith<never, never, E | Errors.AuthError, R>((request) => Effect.flatMap(request, go), Effect.succeed)
}

/** The ambient `HttpClient` with the credential on every request; `AuthError` in its error channel. */
export const make = (
  provider: string,
  options: Options = {}
): Effect.Effect<
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | Errors.AuthError>,
  never,
  HttpClient.HttpClient | CredentialResolver
> =>
  Effect.map(
    Effect.zip(HttpClient.HttpClient, CredentialResolver),
    ([client, resolver]) => wrap(client, resolver, provider, options)
  )

const authErrorClasses: ReadonlyArray<new(...args: ReadonlyArray<any>) => Errors.AuthError> = [
  Errors.NotLoggedIn,
  Errors.ReauthRequired,
  Errors.LoginCancelled,
  Errors.LoginTimeout,
  Errors.StateMismatch,
  Errors.AuthorizationDenied,
  Errors.TokenEndpointError,
  Errors.NetworkError,
  Errors.JwtInvalid,
  Errors.DiscoveryError,
  Errors.StoreCorrupted,
  Errors.StoreLocked,
  Errors.StorePermissions,
  Errors.StoreError,
  Errors.ConfigInvalid,
  Errors.PortUnavailable,
  Errors.UnknownProvider,
  Errors.McpDiscoveryError
]

export const isAuthError = (u: unknown): u is Errors.AuthError => authErrorClasses.some((C) => u instanceof C)

/**
 * The `AuthError` behind a failure of a `withCredential` / `layer` client: the error itself,
 * or found through `cause` (an `HttpClientError`, an `@effect/ai` `AiError`), a few levels deep.
 */
export const authError = (error: unknown): Option.Option<Errors.AuthError> => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== undefined; depth++) {
    if (isAuthError(current)) return Option.some(current)
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return Option.none()
}

/**
 * Fails with the `AuthError` itself where a failure carries one (see `authError`), so a
 * runtime can match `NotLoggedIn` / `ReauthRequired` by tag after an `@effect/ai` call.
 */
export const unwrapAuthError = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | Errors.AuthError, R> =>
  Effect.catchAll(self, (error): Effect.Effect<never, E | Errors.AuthError> =>
    Option.match(authError(error), {
      onNone: () => Effect.fail(error),
      onSome: (auth) => Effect.fail(auth)
    }))

/** A plain `HttpClient`: an `AuthError` becomes a `RequestError` (see the module comment). */
export const wrapPlain = (
  client: HttpClient.HttpClient,
  resolver: CredentialResolverShape,
  provider: string,
  options: Options = {}
): HttpClient.HttpClient => {
  const go = send(client, resolver, provider, options)
  return HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    (effect) =>
      Effect.flatMap(effect, (request) =>
        Effect.catchIf(go(request), isAuthError, (error) =>
          Effect.fail(
            new HttpClientError.RequestError({
              // The URL it was going to, never the credential.
              request,
              reason: "Transport",
              description: error.message,
              cause: error
            })
          ))),
    Effect.succeed
  )
}

/**
 * A client transform (`(client) => client`), for `@effect/ai-openai`'s `transformClient`
 * option and similar: the resolver is taken from the context now, the client later.
 */
export const withCredential = (
  provider: string,
  options: Options = {}
): Effect.Effect<(client: HttpClient.HttpClient) => HttpClient.HttpClient, never, CredentialResolver> =>
  Effect.map(CredentialResolver, (resolver) => (client) => wrapPlain(client, resolver, provider, options))

/**
 * Replaces `HttpClient` with one carrying the credential, over the `HttpClient` below it.
 * Provide it above the auth services (`Layer.provide(NodeAuth.layer())`): they keep the
 * plain client for token endpoints; only what is built on top gets the wrapped one.
 */
export const layer = (
  provider: string,
  options: Options = {}
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | CredentialResolver> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(Effect.zip(HttpClient.HttpClient, CredentialResolver), ([client, resolver]) =>
      wrapPlain(client, resolver, provider, options))
  )
