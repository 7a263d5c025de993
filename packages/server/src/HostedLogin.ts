/**
 * Hosted sign-in: login, callback, logout and status routes for an `@effect/platform`
 * HTTP server, for a service that signs in many users (principals) on several replicas.
 *
 * - `GET  {base}/login/:provider`  starts a browser login (core's `PkceFlow.start`), saves
 *   it in `PendingLogins`, and redirects to the provider.
 * - `GET  {base}/callback`         takes the pending login by its state (once, on any
 *   replica), checks it belongs to the request's principal and has not expired, and
 *   completes it (`PkceFlow.complete`: state, `iss`, code exchange, ID token) into the
 *   principal's `TokenStore`.
 * - `POST {base}/logout/:provider` revokes and deletes the principal's login (`Revoker`).
 * - `GET  {base}/status`           the principal's logins, without any secret.
 *
 * Who the principal is stays the host application's business: `options.principal` reads
 * it from the request (a session cookie, a verified header). A request without one (or
 * with a name no store accepts) is answered 401 and touches nothing.
 */
import type { AuthConfig, AuthError, JwtVerifier, SecureRandom } from "@agent-auth/core"
import { PkceFlow, ProviderRegistry, Revoker, SignInRefused, TokenStore, UnknownProvider } from "@agent-auth/core"
import type { HttpClient } from "@effect/platform"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { SqlStoreConfig } from "@agent-auth/sql"
import { Clock, Duration, Effect, Exit, Option } from "effect"
import type { LoginSummary } from "./internal/responses.js"
import { errorResponse, summarize, unauthenticated } from "./internal/responses.js"
import { defaultTimeToLive, PendingLogins } from "./PendingLogins.js"
import { PrincipalStores } from "./PrincipalStores.js"

export type { LoginSummary } from "./internal/responses.js"

export interface Options {
  /**
   * The service's origin as browsers reach it (behind a load balancer, the public one,
   * the same for every replica); the redirect URI is `{publicUrl}{basePath}/callback`.
   */
  readonly publicUrl: string
  /** Where the routes are mounted (default `/auth`). */
  readonly basePath?: string | undefined
  /** The principal of a request as the host application knows it; `None` answers 401. */
  readonly principal: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<Option.Option<string>>
  /** How long a started login may take (default 10 minutes). */
  readonly timeToLive?: Duration.DurationInput | undefined
  /** Where the browser goes after a completed login or a logout (default `{basePath}/status`). */
  readonly returnTo?: string | undefined
}

/** What the routes need besides the request. */
export type Requirements =
  | PendingLogins
  | PrincipalStores
  | ProviderRegistry.ProviderRegistry
  | AuthConfig.AuthConfig
  | HttpClient.HttpClient
  | JwtVerifier.JwtVerifier
  | SecureRandom.SecureRandom

/** The redirect URI every replica registers with the provider. */
export const redirectUri = (options: Options): string =>
  `${options.publicUrl.replace(/\/+$/, "")}${options.basePath ?? "/auth"}/callback`

/** The logins of one principal, for a page of the host application. */
export const loginsOf = (principal: string): Effect.Effect<ReadonlyArray<LoginSummary>, AuthError, PrincipalStores> =>
  Effect.gen(function*() {
    const store = yield* (yield* PrincipalStores).forPrincipal(principal)
    return (yield* store.list()).map(summarize)
  })

/** `PkceFlow` and `Revoker` writing into the principal's store, and nowhere else. */
const withStoreOf = <A, E, R>(principal: string, use: Effect.Effect<A, E, R>) =>
  Effect.flatMap(PrincipalStores, (stores) => stores.forPrincipal(principal)).pipe(
    Effect.flatMap((store) => Effect.provideService(use, TokenStore.TokenStore, store))
  )

const redirect = (location: string) => HttpServerResponse.redirect(location, { status: 303 })

/** The routes; mount them into the host's router (`HttpRouter.concat`) or serve them alone. */
export const router = (options: Options): HttpRouter.HttpRouter<never, Requirements> => {
  const base = options.basePath ?? "/auth"
  const ttl = Duration.decode(options.timeToLive ?? defaultTimeToLive)
  const returnTo = options.returnTo ?? `${base}/status`
  const callbackUri = redirectUri(options)

  /** Runs `f` for the request's principal; 401 without one; every `AuthError` as its JSON answer. */
  const forPrincipal = <R>(
    f: (principal: string) => Effect.Effect<HttpServerResponse.HttpServerResponse, AuthError, R>
  ) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, options.principal).pipe(
      // A name no store accepts (empty, control characters, too long) is no principal either.
      Effect.map(Option.filter((p) => Exit.isSuccess(Effect.runSyncExit(SqlStoreConfig.checkPrincipal(p))))),
      Effect.flatMap(Option.match({ onNone: () => Effect.succeed(unauthenticated), onSome: f })),
      Effect.catchAll((e) =>
        Effect.logDebug("hosted sign-in refused").pipe(
          Effect.annotateLogs({ error: e._tag }),
          Effect.as(errorResponse(e))
        )
      )
    )

  const providerParam = Effect.map(HttpRouter.params, (p) => p["provider"] ?? "")

  const login = forPrincipal((principal) =>
    withStoreOf(
      principal,
      Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const provider = yield* registry.get(yield* providerParam)
      if (!provider.canLogin) {
        return yield* new UnknownProvider({ provider: provider.id, known: registry.list.filter((p) => p.canLogin).map((p) => p.id) })
      }
      const flow = yield* PkceFlow.make
      const started = yield* flow.start(provider.id, { redirectUri: callbackUri })
      const now = yield* Clock.currentTimeMillis
      yield* (yield* PendingLogins).save({ login: started, principal, expiresAt: now + Duration.toMillis(ttl) })
        return yield* redirect(started.authorizationUrl)
      })
    )
  )

  const callback = forPrincipal((principal) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const input = PkceFlow.parseCallbackInput(new URL(request.url, callbackUri).toString())
      // Taken (and so used up) before anything else is checked: a refused state cannot be retried.
      const pending = yield* (yield* PendingLogins).take(input.state ?? "")
      // A login link opened by another user must not sign that user in to the starter's account.
      if (pending.principal !== principal) return yield* new SignInRefused({ reason: "principal" })
      yield* withStoreOf(principal, Effect.flatMap(PkceFlow.make, (flow) => flow.complete(pending.login, input)))
      return yield* redirect(returnTo)
    })
  )

  const logout = forPrincipal((principal) =>
    Effect.gen(function*() {
      const provider = yield* providerParam
      const request = yield* HttpServerRequest.HttpServerRequest
      const account = new URL(request.url, callbackUri).searchParams.get("account")
      const store = yield* (yield* PrincipalStores).forPrincipal(principal)
      const logins = (yield* store.list(provider)).filter((c) => account === null || c.account === account)
      const revoker = yield* Revoker.make().pipe(Effect.provideService(TokenStore.TokenStore, store))
      for (const c of logins) yield* revoker.logout({ provider: c.provider, account: c.account })
      return yield* redirect(returnTo)
    })
  )

  const status = forPrincipal((principal) =>
    Effect.map(loginsOf(principal), (logins) => HttpServerResponse.unsafeJson({ principal, logins }))
  )

  const path = (p: string) => `${base}${p}` as HttpRouter.PathInput
  return HttpRouter.empty.pipe(
    HttpRouter.get(path("/login/:provider"), login),
    HttpRouter.get(path("/callback"), callback),
    HttpRouter.post(path("/logout/:provider"), logout),
    HttpRouter.get(path("/status"), status)
  )
}
