/**
 * Requests to an MCP server with its login's token: `fetch(url)` gives a standard `fetch`
 * for `@modelcontextprotocol/sdk` transports, `layer(url)` is `HttpClient` middleware.
 *
 * Per request:
 * - The token goes only in the `Authorization` header, and only to the server it was issued
 *   for (same origin, the login's URL path or below); any other request passes untouched. A
 *   request carrying a token follows no redirect.
 * - The token comes from `Refresher.fresh` (refreshed when due; one refresh per login at a
 *   time, in the process and across processes).
 * - A 401: one forced refresh (concurrent 401s share it; a login already refreshed by
 *   another fiber is used as it is) and one retry; a second 401 fails with `NotLoggedIn`
 *   naming `agent-auth mcp login <url>`.
 * - A 403 `insufficient_scope`: a new sign-in asking for the union of the scopes held and
 *   challenged, at most twice, when the caller gave `signIn`; without it, `NotLoggedIn`
 *   naming `agent-auth mcp login <url> --scope …`.
 * - `fetch`'s hot path: the login it last used is reused from memory, with no store read
 *   and no Effect run, while it is fresh and was read from the store less than
 *   `REVALIDATE_MILLIS` ago. Crossing from a Promise into an Effect and back costs more than
 *   the rest of a loopback request's overhead, so a request within the second pays none of
 *   it. A logout in another process is seen within that second (and a revoked token's 401
 *   sooner: it re-reads the store at once).
 */
import { HttpClient, HttpClientError, type HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { HttpClientRequest as Req } from "@effect/platform"
import {
  AuthConfig,
  type AuthError,
  AuthHttpClient,
  type Domain,
  NotLoggedIn,
  ProviderRegistry,
  Refresher,
  TokenStore
} from "@agent-auth/core"
import type { Provider } from "@agent-auth/core"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Redacted, Runtime } from "effect"
import * as ClientRegistration from "./ClientRegistration.js"
import * as McpServers from "./McpServers.js"
import { loginCommand, unionScopes } from "./McpLogin.js"
import { parseChallenge } from "./ProtectedResource.js"

/** How many new sign-ins one request may cause for more scopes. */
export const MAX_STEP_UPS = 2

/** How long `fetch` reuses the login it last read from the store before reading it again. */
export const REVALIDATE_MILLIS = 1000

export interface StepUpRequest {
  readonly url: string
  readonly name: string
  /** The scopes to ask for: those held and those the server challenged. */
  readonly scopes: ReadonlyArray<string>
}

export interface Options {
  /** A new sign-in with more scopes, where the runtime can interact with its user (else step-up fails with `NotLoggedIn`). */
  readonly signIn?: ((request: StepUpRequest) => Effect.Effect<void, AuthError>) | undefined
  /** The fetch underneath (default `globalThis.fetch`). */
  readonly fetch?: typeof globalThis.fetch | undefined
}

/** What one exchange gave: enough to decide, whatever carried it. */
export interface Answer {
  readonly status: number
  readonly wwwAuthenticate: string | undefined
}

/** A request already sent (by `fetch`'s hot path) with `login`'s token, and its answer. */
interface Sent<A extends Answer> {
  readonly login: Domain.OAuthCredential
  readonly answer: A
}

/** Whether an answer asks for something only the full rules can do (a refresh, a step-up). */
const needsRules = (answer: Answer, replayable: boolean): boolean =>
  replayable && (answer.status === 401 || answer.status === 403)

const header = (login: Domain.OAuthCredential) => `Bearer ${Redacted.value(login.tokens.accessToken)}`

export interface McpAuthShape {
  /** A standard `fetch` that signs requests to the MCP server `url` (its name works too). */
  readonly fetch: (url: string, options?: Options) => Effect.Effect<typeof globalThis.fetch, AuthError>
  /** `client` with requests to the MCP server `url` signed. */
  readonly client: (
    url: string,
    client: HttpClient.HttpClient,
    options?: Options
  ) => Effect.Effect<HttpClient.HttpClient, AuthError>
}

export class McpAuth extends Context.Tag("@agent-auth/mcp/McpAuth")<McpAuth, McpAuthShape>() {}

const notLoggedIn = (p: Provider.ProviderConfig, scopes?: ReadonlyArray<string>) =>
  new NotLoggedIn({ provider: p.id, envVars: [], canLogin: true, command: loginCommand({ url: p.url ?? p.id, scopes }) })

export const make = Effect.gen(function*() {
  const registry = yield* ProviderRegistry.ProviderRegistry
  const store = yield* TokenStore.TokenStore
  const servers = Option.getOrUndefined(yield* Effect.serviceOption(McpServers.McpServers))
  const skewMillis = Duration.toMillis((yield* AuthConfig.AuthConfig).refreshSkew)
  const refresher = withForgetting(yield* Refresher.Refresher, servers)

  /** The server and its login's key; the first stored account (an MCP login has one). */
  const target = (url: string) =>
    Effect.gen(function*() {
      const p = yield* registry.get(url).pipe(
        // A URL no login knows: the command that signs in to it.
        Effect.mapError((e): AuthError =>
          e._tag === "UnknownProvider" && /^https?:\/\//i.test(url)
            ? new NotLoggedIn({ provider: url, envVars: [], canLogin: true, command: loginCommand({ url }) })
            : e
        )
      )
      if (p.kind !== "mcp" || p.url === undefined) {
        return yield* notLoggedIn(p)
      }
      return p
    })

  /** The login's key; looked up once per server and process while it holds a login. */
  const keys = new Map<string, { readonly provider: string; readonly account: string }>()
  const keyOf = (p: Provider.ProviderConfig) => {
    const known = keys.get(p.id)
    if (known !== undefined) return Effect.succeed(known)
    return Effect.flatMap(store.list(p.id), (logins) => {
      const first = logins.find((c) => c._tag === "OAuthCredential")
      if (first === undefined) return Effect.fail(notLoggedIn(p))
      const key = { provider: p.id, account: first.account }
      keys.set(p.id, key)
      return Effect.succeed(key)
    })
  }

  /**
   * The rules of the module comment over any way of sending: `send(authorization)` makes the
   * exchange with that header value; `replayable` says whether the request can be sent again;
   * `sent`, a first exchange already made. Gives the final answer and the login it used.
   */
  const authorize = <A extends Answer, E>(
    p: Provider.ProviderConfig,
    send: (authorization: string) => Effect.Effect<A, E>,
    replayable: boolean,
    options: Options,
    sent?: Sent<A>
  ): Effect.Effect<Sent<A>, E | AuthError> =>
    Effect.gen(function*() {
      const url = p.url ?? p.id
      const key = yield* keyOf(p)
      let login = sent?.login ?? (yield* refresher.fresh(key))
      let answer = sent?.answer ?? (yield* send(header(login)))
      if (answer.status === 401 && replayable) {
        yield* Effect.logDebug("401 from the MCP server: one forced refresh").pipe(Effect.annotateLogs({ server: url, rule: "401 → refresh once" }))
        login = yield* refresher.fresh(key, { force: true, current: login })
        answer = yield* send(header(login))
        if (answer.status === 401) return yield* notLoggedIn(p)
      }
      for (let stepUps = 0; answer.status === 403 && replayable; stepUps++) {
        const challenge = parseChallenge(answer.wwwAuthenticate)
        if (challenge?.error !== "insufficient_scope") break
        const held = login.tokens.scopes.length > 0 ? login.tokens.scopes : p.scopes
        const scopes = unionScopes(held, challenge.scopes ?? [])
        yield* Effect.logDebug("403 insufficient_scope: step-up").pipe(
          Effect.annotateLogs({ server: url, scope: scopes.join(" "), step_up: stepUps + 1, limit: MAX_STEP_UPS })
        )
        if (options.signIn === undefined || stepUps >= MAX_STEP_UPS) return yield* notLoggedIn(p, scopes)
        yield* options.signIn({ url, name: p.id, scopes })
        login = yield* refresher.fresh(key)
        answer = yield* send(header(login))
      }
      return { login, answer }
    })

  const fetch = (url: string, options: Options = {}): Effect.Effect<typeof globalThis.fetch, AuthError> =>
    Effect.gen(function*() {
      const p = yield* target(url)
      const base = p.url!
      const runtime = yield* Effect.runtime<never>()
      // The fiber's clock (a TestClock in tests), read synchronously on the hot path.
      const clock = yield* Effect.clock
      // A failure rejects with the error itself (an `AuthError` names the command that fixes it).
      const run = async <A>(effect: Effect.Effect<A, unknown>): Promise<A> => {
        const exit = await Runtime.runPromiseExit(runtime)(effect)
        if (Exit.isSuccess(exit)) return exit.value
        throw Cause.squash(exit.cause)
      }
      const underlying = options.fetch ?? globalThis.fetch
      const under = AuthHttpClient.underBase(base)
      /** The login last used, its header, and when it was read from the store: the hot path's whole state. */
      let held: { readonly login: Domain.OAuthCredential; readonly authorization: string; readonly readAt: number } | undefined
      const reusable = (now: number) =>
        held !== undefined && now - held.readAt < REVALIDATE_MILLIS && Refresher.isFresh(held.login, now, skewMillis)
          ? held
          : undefined
      return (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
        const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url
        if (!under(href)) return underlying(input, init)
        const request = input instanceof Request ? await readRequest(input, init) : replayable(init)
        const exchange = (authorization: string) => {
          const headers = new Headers(request.headers)
          headers.set("authorization", authorization)
          return underlying(href, { ...request.init, headers, redirect: "manual" }).then((response) => ({
            status: response.status,
            // Read only when a 401 or 403 needs it.
            get wwwAuthenticate() {
              return response.headers.get("www-authenticate") ?? undefined
            },
            response
          }))
        }
        // No AbortSignal of Effect's own: the caller's (the SDK's) is the one that matters.
        const send = (authorization: string) => Effect.tryPromise({ try: () => exchange(authorization), catch: (cause) => cause })
        const readAt = clock.unsafeCurrentTimeMillis()
        const reused = reusable(readAt)
        let sent: Sent<Awaited<ReturnType<typeof exchange>>> | undefined
        if (reused !== undefined) {
          const answer = await exchange(reused.authorization)
          if (!needsRules(answer, request.replayable)) return answer.response
          // A 401 or 403: the full rules, from this answer on, and the store read again next time.
          held = undefined
          sent = { login: reused.login, answer }
        }
        const final = await run(authorize(p, send, request.replayable, options, sent))
        if (final.login !== reused?.login) {
          held = { login: final.login, authorization: header(final.login), readAt: sent === undefined ? readAt : clock.unsafeCurrentTimeMillis() }
        }
        return final.answer.response
      }) as typeof globalThis.fetch
    })

  const client = (url: string, inner: HttpClient.HttpClient, options: Options = {}) =>
    Effect.map(target(url), (p) =>
      HttpClient.transform(inner, (effect, request) => {
        if (!AuthHttpClient.isUnderBase(request.url, p.url!)) return effect
        const replayable = request.body._tag !== "Stream"
        const send = (authorization: string) =>
          Effect.map(
            inner.execute(Req.setHeader(request, "authorization", authorization)),
            (response: HttpClientResponse.HttpClientResponse) => ({
              status: response.status,
              wwwAuthenticate: response.headers["www-authenticate"],
              response
            })
          )
        return authorize(p, send, replayable, options).pipe(
          Effect.map((sent) => sent.answer.response),
          Effect.catchIf(AuthHttpClient.isAuthError, (e) => Effect.fail(asRequestError(request, e)))
        )
      }))

  return McpAuth.of({ fetch, client })
})

/** What a fetch call sends, in a form that can be sent twice (and whether it can). */
interface Replayable {
  readonly init: RequestInit
  readonly headers: HeadersInit | undefined
  readonly replayable: boolean
}

/**
 * A fetch call's `init` as it is: the SDK's string bodies can be sent twice; a stream body
 * cannot: sent once, and a 401 to it is returned as it is.
 */
const replayable = (init: RequestInit | undefined): Replayable => {
  const body = init?.body
  const stream = typeof ReadableStream !== "undefined" && body instanceof ReadableStream
  return { init: init ?? {}, headers: init?.headers, replayable: !stream }
}

/** A `Request` (with `init` over it), its body read once into memory so it can be sent twice. */
const readRequest = async (input: Request, init: RequestInit | undefined): Promise<Replayable> => {
  const request = init === undefined ? input : new Request(input, init)
  const body = request.body === null ? null : await request.arrayBuffer()
  return {
    init: { method: request.method, body, signal: request.signal },
    headers: request.headers,
    replayable: true
  }
}

/**
 * The refresher, except that a refresh the token endpoint refuses with `invalid_client`
 * forgets the issuer's dynamic registration (the issuer no longer knows the client), so the
 * next `mcp login` registers anew instead of failing the same way.
 */
const withForgetting = (
  refresher: Refresher.RefresherShape,
  servers: McpServers.McpServersShape | undefined
): Refresher.RefresherShape =>
  servers === undefined ? refresher : {
    ...refresher,
    fresh: (key, options) =>
      refresher.fresh(key, options).pipe(
        Effect.tapError((e) =>
          e._tag === "ReauthRequired" && e.reason === "invalid_client"
            ? Effect.flatMap(servers.read, (file) => {
              const record = file.servers[key.provider]
              return record === undefined || record.client !== "dynamic"
                ? Effect.void
                : ClientRegistration.forget(record.issuer, record.clientId).pipe(Effect.provideService(McpServers.McpServers, servers))
            }).pipe(Effect.ignore)
            : Effect.void
        )
      )
  }

/** An `AuthError` in an `HttpClient`'s error channel (`AuthHttpClient.authError` finds it again). */
const asRequestError = (request: HttpClientRequest.HttpClientRequest, e: AuthError) =>
  new HttpClientError.RequestError({ request: Req.get(request.url), reason: "Transport", cause: e, description: e.message })

export const layerService: Layer.Layer<
  McpAuth,
  never,
  AuthConfig.AuthConfig | ProviderRegistry.ProviderRegistry | Refresher.Refresher | TokenStore.TokenStore
> = Layer.effect(McpAuth, make)

/** `HttpClient` middleware: the ambient client, with requests to the MCP server `url` signed. */
export const layer = (
  url: string,
  options: Options = {}
): Layer.Layer<HttpClient.HttpClient, AuthError, HttpClient.HttpClient | McpAuth> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.gen(function*() {
      const auth = yield* McpAuth
      return yield* auth.client(url, yield* HttpClient.HttpClient, options)
    })
  )
