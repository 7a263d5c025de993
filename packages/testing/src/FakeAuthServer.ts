/**
 * An in-process OAuth 2.0 / OpenID Connect authorization server for tests and the CLI's
 * `demo` provider: authorization code + PKCE (S256 only), refresh-token rotation with
 * replay detection, RFC 7009 revocation, RFC 7662 introspection, RFC 8628 device
 * authorization, RS256 ID tokens with a rotatable JWKS, and fault injection. An `openai`
 * flavor mimics auth.openai.com's paths, JSON refresh, error codes and device-auth variant.
 *
 * One `HttpRouter` app, two transports: `layer` / `make` serve it on 127.0.0.1 (port 0 by
 * default), and every instance also exposes `client`, an `HttpClient` that runs the app in
 * the caller's fiber with no socket (`layerInMemory` provides it as the `HttpClient`).
 *
 * Time: the server's "now" (token `iat`/`exp`, code and device-code lifetimes, polling
 * intervals) and its injected delays come from the Effect `Clock` in force where the
 * server was made. Made inside `it.effect`, that is the `TestClock`: tokens expire when
 * the test calls `TestClock.adjust`, and a `Fault.delay` only ends when the test moves the
 * clock. Made under the live clock (`it.live`, the CLI), it is wall time.
 *
 * Persistence: state lives in `Ref`s and dies with the server, unless the caller keeps it.
 * `snapshot` is the state as JSON (signing keys included, faults and counts not), the
 * `restore` option starts a server from one, and the `persist` option is called with a
 * fresh snapshot after every change, so a server can outlive its process (the CLI's
 * `demo` provider starts one per command).
 *
 * Not a production server: no consent UI worth the name, no rate limiting, and its
 * snapshots hold private keys and live tokens in clear.
 */
import { HttpServerRequest } from "@effect/platform"
import type { HttpApp, HttpServerError } from "@effect/platform"
import { HttpClient } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Context, Duration, Effect, Either, Layer, Redacted, Ref } from "effect"
import type { Scope } from "effect"
import type * as jose from "jose"
import * as Http from "node:http"
import { makeKeys, makeKeysFrom } from "./internal/fakeAuthKeys.js"
import type { Issued } from "./internal/fakeAuthApp.js"
import { accessIdOf, freshIds, makeApp, pathsFor, RESET_HEADER } from "./internal/fakeAuthApp.js"
import { memoryClient } from "./internal/fakeAuthMemory.js"
import * as Snapshot from "./internal/fakeAuthSnapshot.js"
import * as S from "./internal/fakeAuthState.js"

export type { Counts, FakeClient, FakeUser, FaultEndpoint, Flavor, GrantType, Introspection } from "./internal/fakeAuthState.js"
export type { Issued as TokenResponseBody } from "./internal/fakeAuthApp.js"
export type { ServiceAccount } from "./internal/fakeAuthJwtBearer.js"
import type { ServiceAccount } from "./internal/fakeAuthJwtBearer.js"

/** The public client every flavor accepts (token_endpoint_auth_method `none`, any loopback redirect). */
export const defaultClientId = "agent-auth-test"

/** The Codex CLI's public client id, which the `openai` flavor accepts so the built-in provider needs only an issuer override. */
export const openaiClientId = "app_EMoamEEZ73f0CkXaXp7hrann"

/** A confidential client (client_secret_post or basic) present by default in both flavors. */
export const confidentialClient: S.FakeClient = {
  clientId: "agent-auth-confidential",
  clientSecret: "agent-auth-test-secret"
}

/** The person every login signs in as, unless `options.user` or `setUser` says otherwise. */
export const defaultUser: S.FakeUser = {
  sub: "user-0001",
  email: "ada@example.test",
  name: "Ada Lovelace",
  openai: {
    chatgpt_account_id: "acct-test-0001",
    chatgpt_plan_type: "plus",
    chatgpt_user_id: "user-test-0001",
    organization_id: "org-test-0001",
    project_id: "proj-test-0001"
  }
}

export interface UserInput {
  readonly sub?: string
  readonly email?: string
  readonly name?: string
  readonly openai?: Partial<S.FakeUser["openai"]>
}

export interface FakeAuthServerOptions {
  /** `"oidc"` (default): a standard issuer. `"openai"`: auth.openai.com's paths and quirks. */
  readonly flavor?: S.Flavor
  /** Default: the public `agent-auth-test` (and, in the openai flavor, OpenAI's Codex client id first), plus `confidentialClient`. */
  readonly clients?: ReadonlyArray<S.FakeClient>
  /** Default 1 hour. */
  readonly accessTokenTtl?: Duration.DurationInput
  /** Default 30 days. */
  readonly refreshTokenTtl?: Duration.DurationInput
  /** Authorization codes. Default 60 seconds. */
  readonly codeTtl?: Duration.DurationInput
  /** Device and user codes. Default 15 minutes. */
  readonly deviceCodeTtl?: Duration.DurationInput
  /** The polling interval announced for device logins. Default 5 seconds. */
  readonly deviceInterval?: Duration.DurationInput
  readonly user?: UserInput
  /** Scope when an authorization request names none. Default `openid profile email offline_access`. */
  readonly scope?: string
  /** true (default): /authorize answers at once with a code. false: an HTML page with approve/deny links. */
  readonly autoApprove?: boolean
  /** Answer every authorization with this error (e.g. `access_denied`) instead of a code. */
  readonly authorizeError?: S.AuthorizeError
  /** Send RFC 9207 `iss` with authorization responses and advertise it. Default true. */
  readonly issParameter?: boolean
  /** JWT access tokens (with `exp`, `jti`). Default: true for openai, false (opaque) for oidc. */
  readonly jwtAccessTokens?: boolean
  /** Service accounts whose signed assertions the JWT bearer grant (RFC 7523) accepts. */
  readonly serviceAccounts?: ReadonlyArray<ServiceAccount>
  /**
   * More fields for the discovery document (metadata extensions, RFC 8414 §2), after the
   * standard ones. The CLI's embedded demo server names the home it serves this way.
   */
  readonly discoveryExtra?: Readonly<Record<string, unknown>>
  /** `layer` / `make`: the port on 127.0.0.1. Default 0 (any free port). */
  readonly port?: number
  /** `layerInMemory` / `makeInMemory`: the issuer URL. Default `http://127.0.0.1:9` (nothing listens there). */
  readonly issuer?: string
  /**
   * Start from a `snapshot` of an earlier server with the same issuer and flavor: its
   * signing keys, grants, tokens, codes, device logins and user. Anything else (not a
   * snapshot, another issuer, a key that does not import) starts a fresh server instead
   * of failing; `restored` says which happened and `restoreProblem` why.
   */
  readonly restore?: unknown
  /**
   * Called with a fresh snapshot after every request or method that changed the state
   * (and, for `make` / `layer`, once more when the server closes). Calls never overlap and
   * each gets the state as it is when it runs, so the last call always has the latest.
   * A change is answered only after its call ends: write the snapshot somewhere durable.
   */
  readonly persist?: (snapshot: unknown) => Effect.Effect<void>
}

/** A fault: what the next matching request gets instead of (or besides) its answer. */
export type Fault = S.Fault

export const Fault = {
  /** An HTTP error status with a JSON OAuth-style body (`server_error`, or `temporarily_unavailable` for 503). */
  status: (status: number): Fault => ({ _tag: "Status", status }),
  /** 429 with `Retry-After: <seconds>`. */
  rateLimited: (retryAfterSeconds: number): Fault => ({ _tag: "RateLimited", retryAfter: retryAfterSeconds }),
  /** Answer normally, but only after this long on the server's Clock (TestClock drives it). */
  delay: (duration: Duration.DurationInput): Fault => ({ _tag: "Delay", millis: Duration.toMillis(duration) }),
  /** 200, `application/json`, truncated JSON. */
  malformedJson: { _tag: "MalformedJson" } as Fault,
  /** An HTML page (a proxy's or captive portal's) with this status (default 200). */
  html: (status = 200): Fault => ({ _tag: "Html", status }),
  /** 200 with JSON that has no `access_token`. */
  missingAccessToken: { _tag: "MissingAccessToken" } as Fault,
  /** 400 `invalid_grant`, whatever the grant. */
  invalidGrant: { _tag: "InvalidGrant" } as Fault,
  /** The connection drops with no answer: the socket is destroyed, or the in-memory client fails with a transport `RequestError`. */
  connectionReset: { _tag: "ConnectionReset" } as Fault
} as const

export interface InjectOptions {
  /** How many matching requests the fault applies to. Default 1. */
  readonly times?: number
  /** Only token requests of this grant type. Default: any. */
  readonly grant?: S.GrantType
  /** Which endpoint. Default `"token"`. */
  readonly endpoint?: S.FaultEndpoint
  /**
   * Process the request first (rotating a refresh token, consuming a code), then answer
   * with the fault: an answer lost after the server acted. Default false (the request is
   * not processed). For a delay: sleep after processing instead of before.
   */
  readonly afterProcessing?: boolean
}

export interface Endpoints {
  readonly discovery: string
  readonly authorization: string
  readonly token: string
  readonly revocation: string
  readonly jwks: string
  readonly introspection: string
  readonly userinfo: string
  /** RFC 8628 device authorization (oidc) or OpenAI's `deviceauth/usercode` (openai). */
  readonly deviceAuthorization: string
  /** OpenAI's `deviceauth/token` poll (openai flavor; not served in the oidc flavor). */
  readonly deviceToken: string
  /** The page where a person enters (or, with `?user_code=…&approve=1`, approves) a user code. */
  readonly deviceVerification: string
}

type TokenInput = string | Redacted.Redacted<string>

export interface FakeAuthServerShape {
  /** `http://127.0.0.1:<port>`, no trailing slash; equals the discovery document's `issuer`. */
  readonly issuer: string
  readonly flavor: S.Flavor
  /** The default public client's id. */
  readonly clientId: string
  readonly endpoints: Endpoints
  /** Runs requests for `issuer` against this server in memory; fails any other URL with a transport `RequestError`. */
  readonly client: HttpClient.HttpClient
  /** Requests received so far, per grant type and endpoint (faulted requests included). */
  readonly counts: Effect.Effect<S.Counts>
  readonly resetCounts: Effect.Effect<void>
  /** Queue a fault for the next matching request(s). Faults are matched in the order queued. */
  readonly inject: (fault: Fault, options?: InjectOptions) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  /** Approve a pending user code as the current user; false when unknown, expired or already answered. */
  readonly approveDevice: (userCode: string) => Effect.Effect<boolean>
  readonly denyDevice: (userCode: string) => Effect.Effect<boolean>
  /** User codes waiting for an answer, oldest first. */
  readonly pendingUserCodes: Effect.Effect<ReadonlyArray<string>>
  /** RFC 7662 view of an access or refresh token, at the server's now. */
  readonly introspect: (token: TokenInput) => Effect.Effect<S.Introspection>
  readonly isActive: (token: TokenInput) => Effect.Effect<boolean>
  /** Revoke the whole grant a token belongs to (a provider ending a session); false when unknown. */
  readonly revokeGrantOf: (token: TokenInput) => Effect.Effect<boolean>
  /** Revoke every grant issued so far. */
  readonly revokeAll: Effect.Effect<void>
  /** A new signing key (new `kid`) signs from now on; `keepOld: false` drops the old ones from the JWKS. Returns the new kid. */
  readonly rotateKeys: (options?: { readonly keepOld?: boolean }) => Effect.Effect<string>
  readonly jwks: Effect.Effect<{ readonly keys: ReadonlyArray<jose.JWK> }>
  /** The `kid` that signs now. */
  readonly currentKid: Effect.Effect<string>
  /** A completed login without the browser: a new grant and its token response. */
  readonly issueTokens: (options?: { readonly clientId?: string; readonly scope?: string }) => Effect.Effect<Issued>
  /** Who the next logins sign in as. */
  readonly setUser: (user: UserInput) => Effect.Effect<void>
  /** Answer authorizations with this error (undefined: issue codes again). */
  readonly setAuthorizeError: (error: S.AuthorizeError | undefined) => Effect.Effect<void>
  /**
   * The state as a JSON-serialisable value, for the `restore` option: signing keys (as
   * private JWKs), grants, access and refresh tokens, codes, device logins, the user.
   * Not faults, counts, or settings (`authorizeError`, lifetimes), which come from options.
   */
  readonly snapshot: Effect.Effect<unknown>
  /** Whether this server started from `options.restore`. */
  readonly restored: boolean
  /** Why `options.restore` was not used, when it was given and refused. */
  readonly restoreProblem: string | undefined
}

export class FakeAuthServer extends Context.Tag("@agent-auth/testing/FakeAuthServer")<FakeAuthServer, FakeAuthServerShape>() {}

const toUser = (base: S.FakeUser, input: UserInput | undefined): S.FakeUser => ({
  sub: input?.sub ?? base.sub,
  email: input?.email ?? base.email,
  name: input?.name ?? base.name,
  openai: { ...base.openai, ...input?.openai }
})

const reveal = (t: TokenInput): string => (Redacted.isRedacted(t) ? Redacted.value(t) : t)

/** The server's state and app for a known issuer; the transport is chosen by the caller. */
const build = (issuer: string, options: FakeAuthServerOptions = {}) =>
  Effect.gen(function*() {
    const flavor = options.flavor ?? "oidc"
    const clock = yield* Effect.clock
    const restored = options.restore === undefined
      ? undefined
      : yield* Effect.either(Snapshot.decode(options.restore, { issuer, flavor }))
    const from = restored !== undefined && Either.isRight(restored) ? restored.right : undefined
    const keys = from === undefined ? yield* makeKeys : yield* makeKeysFrom(from.keys)
    const clients: ReadonlyArray<S.FakeClient> = options.clients ??
      (flavor === "openai"
        ? [{ clientId: openaiClientId }, { clientId: defaultClientId }, confidentialClient]
        : [{ clientId: defaultClientId }, confidentialClient])
    const life: S.Lifetimes = {
      accessTokenMillis: Duration.toMillis(options.accessTokenTtl ?? Duration.hours(1)),
      refreshTokenMillis: Duration.toMillis(options.refreshTokenTtl ?? Duration.days(30))
    }
    const defaultScope = options.scope ?? "openid profile email offline_access"
    const state = yield* Ref.make<S.State>(
      from === undefined
        ? S.initialState(toUser(defaultUser, options.user), options.authorizeError)
        : { ...S.initialState(from.user, options.authorizeError), ...from.records }
    )
    const snapshot = Effect.flatMap(keys.all, (ks) => Effect.flatMap(Ref.get(state), (s) => Snapshot.encode(issuer, flavor, ks, s)))

    // Persistence: one call at a time, each taking the snapshot when it runs.
    const persistLock = yield* Effect.makeSemaphore(1)
    const persist = options.persist
    const persistNow = persist === undefined ? Effect.void : persistLock.withPermits(1)(Effect.flatMap(snapshot, persist))
    /** What a snapshot holds, by reference: transitions make new values only when they change something. */
    const persistent = Effect.zipWith(Ref.get(state), keys.all, (s, ks): ReadonlyArray<unknown> => [
      s.codes,
      s.grants,
      s.access,
      s.refresh,
      s.devices,
      s.pendingConsents,
      s.user,
      ks
    ])
    /** Runs `effect`, then persists if the persistent state changed meanwhile (counts and faults do not count). */
    const tracked = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      persist === undefined ? effect : Effect.gen(function*() {
        const before = yield* persistent
        const result = yield* effect
        const after = yield* persistent
        if (after.some((v, i) => v !== before[i])) yield* persistNow
        return result
      })

    const { app: rawApp, render } = makeApp({
      clock,
      keys,
      state,
      config: {
        issuer,
        flavor,
        clients,
        life,
        codeTtlMillis: Duration.toMillis(options.codeTtl ?? Duration.seconds(60)),
        deviceCodeTtlMillis: Duration.toMillis(options.deviceCodeTtl ?? Duration.minutes(15)),
        deviceIntervalSeconds: Math.max(1, Math.round(Duration.toSeconds(options.deviceInterval ?? Duration.seconds(5)))),
        autoApprove: options.autoApprove ?? true,
        issParameter: options.issParameter ?? true,
        jwtAccessTokens: options.jwtAccessTokens ?? flavor === "openai",
        defaultScope,
        serviceAccounts: options.serviceAccounts ?? [],
        discoveryExtra: options.discoveryExtra ?? {}
      }
    })
    const app = tracked(rawApp)
    const paths = pathsFor(flavor)
    const url = (p: string) => `${issuer}${p}`
    const now = clock.currentTimeMillis
    const modify = <A>(f: (s: S.State, now: number) => [A, S.State]) =>
      Effect.flatMap(now, (t) => Ref.modify(state, (s) => f(s, t)))
    const firstClient = clients[0]?.clientId ?? defaultClientId

    const client = memoryClient(issuer, app)

    const shape: FakeAuthServerShape = {
      issuer,
      flavor,
      clientId: firstClient,
      endpoints: {
        discovery: url("/.well-known/openid-configuration"),
        authorization: url(paths.authorize),
        token: url(paths.token),
        revocation: url(paths.revocation),
        jwks: url(paths.jwks),
        introspection: url(paths.introspection),
        userinfo: url(paths.userinfo),
        deviceAuthorization: url(paths.deviceAuthorization),
        deviceToken: url(paths.deviceToken),
        deviceVerification: url(paths.deviceVerification)
      },
      client,
      counts: Effect.map(Ref.get(state), (s) => s.counts),
      resetCounts: Ref.update(state, (s) => ({ ...s, counts: S.emptyCounts })),
      inject: (fault, o = {}) =>
        Ref.update(state, (s) => ({
          ...s,
          faults: [...s.faults, {
            fault,
            remaining: o.times ?? 1,
            grant: o.grant,
            endpoint: o.endpoint ?? "token",
            afterProcessing: o.afterProcessing ?? false
          }]
        })),
      clearFaults: Ref.update(state, (s) => ({ ...s, faults: [] })),
      approveDevice: (code) => tracked(modify((s, t) => S.decideDevice(s, t, code, true))),
      denyDevice: (code) => tracked(modify((s, t) => S.decideDevice(s, t, code, false))),
      pendingUserCodes: Effect.flatMap(now, (t) =>
        Effect.map(Ref.get(state), (s) =>
          Array.from(s.devices)
            .map(([, d]) => d)
            .filter((d) => d.status === "pending" && t < d.exp)
            .sort((a, b) => a.exp - b.exp)
            .map((d) => d.userCode))),
      introspect: (t) => Effect.flatMap(now, (n) => Effect.map(Ref.get(state), (s) => S.introspect(s, n, accessIdOf(reveal(t)), reveal(t)))),
      isActive: (t) => Effect.flatMap(now, (n) => Effect.map(Ref.get(state), (s) => S.introspect(s, n, accessIdOf(reveal(t)), reveal(t)).active)),
      revokeGrantOf: (t) => tracked(Ref.modify(state, (s) => S.revokeGrantOf(s, accessIdOf(reveal(t)), reveal(t)))),
      revokeAll: tracked(Ref.update(state, S.revokeAll)),
      rotateKeys: (o) => tracked(keys.rotate(o?.keepOld ?? true)),
      jwks: keys.jwks,
      currentKid: Effect.map(keys.current, (k) => k.kid),
      issueTokens: (o) =>
        Effect.flatMap(freshIds, (fresh) =>
          Effect.flatMap(
            tracked(modify((s, t) => S.mint(s, o?.clientId ?? firstClient, o?.scope ?? defaultScope, fresh, t, life))),
            render
          )),
      setUser: (user) => tracked(Ref.update(state, (s) => ({ ...s, user: toUser(s.user, user) }))),
      setAuthorizeError: (error) => Ref.update(state, (s) => ({ ...s, authorizeError: error })),
      snapshot,
      restored: from !== undefined,
      restoreProblem: restored !== undefined && Either.isLeft(restored) ? restored.left : undefined
    }
    return { shape, app, persistNow }
  })

/** A server answering only through its in-memory `client` (no socket); lives as long as the caller holds it. */
export const makeInMemory = (options: FakeAuthServerOptions = {}): Effect.Effect<FakeAuthServerShape> =>
  Effect.map(build(options.issuer?.replace(/\/+$/, "") ?? `http://127.0.0.1:${options.port || 9}`, options), (b) => b.shape)

/** The socket transport turns the app's "reset" marker into a destroyed connection. */
const resetOnSocket = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(app, (response) =>
    response.headers[RESET_HEADER] === undefined
      ? Effect.succeed(response)
      : Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.sync(() => {
          NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
          return response
        })))

/**
 * A server listening on 127.0.0.1 (`options.port`, default any free port) until the scope
 * closes; its `client` reaches the same state in memory.
 */
export const make = (
  options: FakeAuthServerOptions = {}
): Effect.Effect<FakeAuthServerShape, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => Http.createServer(), { host: "127.0.0.1", port: options.port ?? 0 })
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("the fake authorization server needs a TCP address")
    const { app, persistNow, shape } = yield* build(`http://127.0.0.1:${address.port}`, options)
    yield* server.serve(resetOnSocket(app))
    // The last word when the server closes (a change made by a method is persisted already).
    yield* Effect.addFinalizer(() => persistNow)
    return shape
  })

/** `make` as a layer: the server closes with the layer. */
export const layer = (options?: FakeAuthServerOptions): Layer.Layer<FakeAuthServer, HttpServerError.ServeError> =>
  Layer.scoped(FakeAuthServer, make(options))

/**
 * `makeInMemory` as a layer, with its in-memory `HttpClient`: code under test reaches the
 * server with no socket, and nothing else at all (other URLs fail as transport errors).
 */
export const layerInMemory = (
  options?: FakeAuthServerOptions
): Layer.Layer<FakeAuthServer | HttpClient.HttpClient> =>
  Layer.effectContext(
    Effect.map(makeInMemory(options), (server) =>
      Context.make(FakeAuthServer, server).pipe(Context.add(HttpClient.HttpClient, server.client)))
  )
