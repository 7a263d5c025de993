/**
 * Device login: RFC 8628's device authorization grant for OIDC issuers that advertise it,
 * and OpenAI's device-auth variant (user code, polling, then a code exchange).
 *
 * Polling runs on Effect's Clock: the server's interval (5 s when it gives none), plus 5 s
 * after each `slow_down`, until the code's lifetime (OpenAI: 15 minutes) is over.
 */
import { HttpClient } from "@effect/platform"
import { Clock, Context, Duration, Effect, Layer, Schema } from "effect"
import { AuthConfig } from "./AuthConfig.js"
import type { OAuthCredential } from "./Domain.js"
import { Secret } from "./Domain.js"
import type { AuthError } from "./Errors.js"
import { AuthorizationDenied, LoginTimeout, NetworkError, type TokenEndpointError } from "./Errors.js"
import { finishLogin } from "./internal/login.js"
import { sanitize } from "./internal/text.js"
import { clientAuth, logUrl, postJson, requestTokens, type TokenResponse } from "./internal/tokenEndpoint.js"
import { JwtVerifier } from "./JwtVerifier.js"
import type { LoginOptions } from "./PkceFlow.js"
import type { AuthServerMetadata, ProviderConfig } from "./Provider.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import { TokenStore } from "./TokenStore.js"

export interface DeviceFlowShape {
  /** Shows the code through `onEvent` (`DeviceCode`), polls at the server's interval, stores the login. */
  readonly login: (provider: string, options?: Pick<LoginOptions, "account" | "onEvent">) => Effect.Effect<OAuthCredential, AuthError>
}

export class DeviceFlow extends Context.Tag("@agent-auth/core/DeviceFlow")<DeviceFlow, DeviceFlowShape>() {}

/** RFC 8628 §3.2 */
const DeviceAuthorization = Schema.Struct({
  device_code: Secret,
  user_code: Schema.String,
  verification_uri: Schema.String,
  verification_uri_complete: Schema.optional(Schema.String),
  expires_in: Schema.Number,
  interval: Schema.optional(Schema.Number)
})

/** OpenAI's user-code answer; `interval` arrives as a string or a number. */
const OpenAiUserCode = Schema.Struct({
  device_auth_id: Schema.String,
  user_code: Schema.String,
  interval: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString))
})

const OpenAiDeviceToken = Schema.Struct({
  authorization_code: Secret,
  code_verifier: Secret
})

export const DEFAULT_INTERVAL_SECONDS = 5
/** A provider's polling interval is kept within these (0 would poll without pause, 10⁶ never). */
export const MIN_INTERVAL_SECONDS = 1
export const MAX_INTERVAL_SECONDS = 60
/** A device code's announced lifetime is kept within this (an hour-long wait for a code is a mistake or worse). */
export const MAX_DEVICE_LIFETIME_SECONDS = 30 * 60

/** A provider's interval, bounded to 1–60 s; none (or not a number) is the RFC's 5 s. */
export const boundInterval = (seconds: number | undefined): number =>
  seconds === undefined || !Number.isFinite(seconds)
    ? DEFAULT_INTERVAL_SECONDS
    : Math.min(MAX_INTERVAL_SECONDS, Math.max(MIN_INTERVAL_SECONDS, seconds))

/** A device code's lifetime, bounded to 1 s – 30 min. */
export const boundLifetime = (seconds: number): number =>
  Number.isFinite(seconds) ? Math.min(MAX_DEVICE_LIFETIME_SECONDS, Math.max(1, seconds)) : MAX_DEVICE_LIFETIME_SECONDS

/** Device text shown to the person (user code, verification URI): one line, no escape sequences. */
const shown = (text: string): string => sanitize(text, 2_000)
/** OpenAI gives no lifetime; its own client polls for 15 minutes. */
export const OPENAI_DEVICE_LIFETIME_SECONDS = 15 * 60

type Poll<A> =
  | { readonly _tag: "Done"; readonly value: A }
  | { readonly _tag: "Pending" }
  | { readonly _tag: "SlowDown" }

/**
 * Poll `attempt` every `interval` seconds until it is done or `lifetime` seconds passed.
 * Transient network faults count as "pending": the next poll tries again.
 */
const pollUntil = <A, E, R>(
  provider: ProviderConfig,
  attempt: Effect.Effect<Poll<A>, E, R>,
  intervalSeconds: number,
  lifetimeSeconds: number
): Effect.Effect<A, E | LoginTimeout, R> =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + lifetimeSeconds * 1000
    let interval = intervalSeconds
    while (true) {
      yield* Effect.sleep(Duration.seconds(interval))
      if ((yield* Clock.currentTimeMillis) > deadline) {
        return yield* new LoginTimeout({ provider: provider.id, seconds: lifetimeSeconds })
      }
      const result = yield* attempt
      yield* Effect.logDebug("device poll").pipe(
        Effect.annotateLogs({ provider: provider.id, result: result._tag, interval_s: interval })
      )
      if (result._tag === "Done") return result.value
      // RFC 8628 §3.5: slow_down adds 5 seconds to the interval, for good (within the bound).
      if (result._tag === "SlowDown") interval = boundInterval(interval + 5)
    }
  })

export const make = Effect.gen(function*() {
  const registry = yield* ProviderRegistry
  const config = yield* AuthConfig
  const context = yield* Effect.context<HttpClient.HttpClient | JwtVerifier | TokenStore>()

  const rfc8628 = (provider: ProviderConfig, metadata: AuthServerMetadata, options: Pick<LoginOptions, "account" | "onEvent">) =>
    Effect.gen(function*() {
      const endpoint = metadata.device_authorization_endpoint
      if (endpoint === undefined) {
        return yield* new AuthorizationDenied({
          provider: provider.id,
          error: "device_flow_unsupported",
          description: `${metadata.issuer} advertises no device_authorization_endpoint; log in with the browser instead`
        })
      }
      const request = {
        scope: provider.scopes.join(" "),
        ...(provider.audience === undefined ? {} : { audience: provider.audience })
      }
      const client = clientAuth(provider, request)
      const json = yield* postJson(provider, endpoint, client.body, "form", config.httpTimeout, client.headers)
      const answer = yield* Schema.decodeUnknown(DeviceAuthorization)(json).pipe(
        Effect.mapError(() => new NetworkError({ provider: provider.id, endpoint, reason: "the answer is not a device authorization (RFC 8628)" }))
      )
      const auth = {
        ...answer,
        user_code: shown(answer.user_code),
        verification_uri: shown(answer.verification_uri),
        verification_uri_complete: answer.verification_uri_complete === undefined ? undefined : shown(answer.verification_uri_complete),
        expires_in: boundLifetime(answer.expires_in),
        interval: boundInterval(answer.interval)
      }
      yield* Effect.logDebug("device authorization").pipe(
        Effect.annotateLogs({
          provider: provider.id,
          variant: "rfc8628",
          verification_uri: logUrl(auth.verification_uri),
          expires_in_s: auth.expires_in,
          interval_s: auth.interval
        })
      )
      if (options.onEvent) {
        yield* options.onEvent({
          _tag: "DeviceCode",
          verificationUri: auth.verification_uri,
          verificationUriComplete: auth.verification_uri_complete,
          userCode: auth.user_code,
          expiresInSeconds: auth.expires_in
        })
      }
      const attempt = requestTokens(provider, metadata.token_endpoint, {
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        device_code: auth.device_code
      }, "form", config.httpTimeout).pipe(
        Effect.map((value): Poll<TokenResponse> => ({ _tag: "Done", value })),
        Effect.catchAll((e): Effect.Effect<Poll<TokenResponse>, AuthError> => {
          if (e._tag === "NetworkError") return e.final === true ? Effect.fail(e) : Effect.succeed({ _tag: "Pending" })
          if (e.error === "authorization_pending") return Effect.succeed({ _tag: "Pending" })
          if (e.error === "slow_down") return Effect.succeed({ _tag: "SlowDown" })
          if (e.status >= 500 || e.status === 429) return Effect.succeed({ _tag: "Pending" })
          if (e.error === "expired_token") return Effect.fail(new LoginTimeout({ provider: provider.id, seconds: auth.expires_in }))
          return Effect.fail(new AuthorizationDenied({
            provider: provider.id,
            error: e.error ?? `http_${e.status}`,
            ...(e.description === undefined ? {} : { description: e.description })
          }))
        })
      )
      const response = yield* pollUntil(provider, attempt, auth.interval, auth.expires_in)
      return yield* finishLogin(provider, metadata, response, {
        account: options.account,
        expectIdToken: provider.scopes.includes("openid")
      })
    })

  const openai = (provider: ProviderConfig, metadata: AuthServerMetadata, options: Pick<LoginOptions, "account" | "onEvent">) =>
    Effect.gen(function*() {
      const base = (provider.issuer ?? metadata.issuer).replace(/\/+$/, "")
      const userCodeUrl = `${base}/api/accounts/deviceauth/usercode`
      const json = yield* postJson(provider, userCodeUrl, { client_id: provider.clientId }, "json", config.httpTimeout).pipe(
        Effect.catchTag("TokenEndpointError", (e): Effect.Effect<never, AuthorizationDenied | TokenEndpointError> =>
          e.status === 404
            ? Effect.fail(new AuthorizationDenied({
              provider: provider.id,
              error: "device_login_disabled",
              description: "device code login is not enabled for this account: turn it on in ChatGPT's security settings, or log in with the browser"
            }))
            : Effect.fail(e))
      )
      const code = yield* Schema.decodeUnknown(OpenAiUserCode)(json).pipe(
        Effect.mapError(() => new NetworkError({ provider: provider.id, endpoint: userCodeUrl, reason: "the answer has no device_auth_id and user_code" }))
      )
      yield* Effect.logDebug("device authorization").pipe(
        Effect.annotateLogs({ provider: provider.id, variant: "openai", expires_in_s: OPENAI_DEVICE_LIFETIME_SECONDS })
      )
      if (options.onEvent) {
        yield* options.onEvent({
          _tag: "DeviceCode",
          verificationUri: `${base}/codex/device`,
          verificationUriComplete: undefined,
          userCode: shown(code.user_code),
          expiresInSeconds: OPENAI_DEVICE_LIFETIME_SECONDS
        })
      }
      const tokenUrl = `${base}/api/accounts/deviceauth/token`
      const attempt = postJson(provider, tokenUrl, { device_auth_id: code.device_auth_id, user_code: code.user_code }, "json", config.httpTimeout).pipe(
        Effect.flatMap((body) =>
          Schema.decodeUnknown(OpenAiDeviceToken)(body).pipe(
            Effect.mapError(() => new NetworkError({ provider: provider.id, endpoint: tokenUrl, reason: "the answer has no authorization_code" }))
          )
        ),
        Effect.map((value): Poll<typeof OpenAiDeviceToken.Type> => ({ _tag: "Done", value })),
        Effect.catchAll((e): Effect.Effect<Poll<typeof OpenAiDeviceToken.Type>, AuthError> =>
          // 403/404 mean "not yet approved"; network faults and 5xx are retried at the next poll.
          e._tag === "NetworkError"
            ? (e.final === true ? Effect.fail(e) : Effect.succeed({ _tag: "Pending" }))
            : e.status === 403 || e.status === 404 || e.status >= 500 || e.status === 429
            ? Effect.succeed({ _tag: "Pending" })
            : Effect.fail(new AuthorizationDenied({
              provider: provider.id,
              error: e.error ?? `http_${e.status}`,
              ...(e.description === undefined ? {} : { description: e.description })
            }))
        )
      )
      const interval = boundInterval(code.interval)
      const grant = yield* pollUntil(provider, attempt, interval, OPENAI_DEVICE_LIFETIME_SECONDS)
      const response = yield* requestTokens(provider, metadata.token_endpoint, {
        grant_type: "authorization_code",
        code: grant.authorization_code,
        redirect_uri: `${base}/deviceauth/callback`,
        code_verifier: grant.code_verifier
      }, "form", config.httpTimeout)
      return yield* finishLogin(provider, metadata, response, { account: options.account, expectIdToken: true })
    })

  const login = (providerId: string, options: Pick<LoginOptions, "account" | "onEvent"> = {}) =>
    Effect.gen(function*() {
      const provider = yield* registry.get(providerId)
      const metadata = yield* registry.metadata(provider)
      if (provider.device === "openai") return yield* openai(provider, metadata, options)
      if (provider.device === "rfc8628") return yield* rfc8628(provider, metadata, options)
      return yield* new AuthorizationDenied({
        provider: provider.id,
        error: "device_flow_unsupported",
        description: `${provider.id} has no device login; use the browser login`
      })
    }).pipe(Effect.provide(context))

  return DeviceFlow.of({ login })
})

export const layer: Layer.Layer<
  DeviceFlow,
  never,
  ProviderRegistry | AuthConfig | HttpClient.HttpClient | JwtVerifier | TokenStore
> = Layer.effect(DeviceFlow, make)

