/**
 * Browser login with the authorization-code grant and PKCE S256 (RFC 7636, RFC 8252).
 *
 * `start` and `complete` are separate so a UI server can start a login and finish it
 * later from a pasted redirect URL; `login` wires the loopback `CallbackServer`, the
 * `BrowserLauncher`, and an optional pasted-input source, whichever answers first.
 */
import { HttpClient } from "@effect/platform"
import { Context, Duration, Effect, Fiber, Layer, Option, Redacted } from "effect"
import { AuthConfig } from "./AuthConfig.js"
import { BrowserLauncher } from "./BrowserLauncher.js"
import { CallbackServer } from "./CallbackServer.js"
import type { OAuthCredential } from "./Domain.js"
import type { AuthError } from "./Errors.js"
import { AuthorizationDenied, LoginTimeout, StateMismatch } from "./Errors.js"
import { constantTimeEqual, finishLogin } from "./internal/login.js"
import { logUrl, requestTokens } from "./internal/tokenEndpoint.js"
import { sanitize } from "./internal/text.js"
import { JwtVerifier } from "./JwtVerifier.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import { base64url, SecureRandom, token } from "./SecureRandom.js"
import { TokenStore } from "./TokenStore.js"

/** A login in progress: everything `complete` needs. Holds the PKCE verifier: keep it private. */
export interface PendingLogin {
  readonly provider: string
  readonly authorizationUrl: string
  readonly redirectUri: string
  readonly state: string
  readonly codeVerifier: Redacted.Redacted<string>
  readonly nonce: string | undefined
}

/** What came back to the redirect URI, parsed from the callback request or from pasted text. */
export interface CallbackInput {
  readonly code?: Redacted.Redacted<string> | undefined
  readonly state?: string | undefined
  readonly iss?: string | undefined
  readonly error?: string | undefined
  readonly errorDescription?: string | undefined
}

/** Progress of a login, for a UI to show. */
export type LoginEvent =
  | { readonly _tag: "AuthorizationUrl"; readonly url: string; readonly redirectUri: string }
  | { readonly _tag: "BrowserOpened" }
  | { readonly _tag: "BrowserSkipped"; readonly reason: string }
  /** The callback server could not bind; the login goes on with pasting only. */
  | { readonly _tag: "PasteOnly"; readonly reason: string }
  /** Pasted text that did not complete the login (wrong state, no code); another paste is awaited. */
  | { readonly _tag: "PasteRejected"; readonly reason: string }
  | {
    readonly _tag: "DeviceCode"
    readonly verificationUri: string
    readonly verificationUriComplete: string | undefined
    readonly userCode: string
    readonly expiresInSeconds: number
  }

export interface LoginOptions {
  /** Store the login under this account name (default: account id, else email, else subject). */
  readonly account?: string | undefined
  readonly onEvent?: ((event: LoginEvent) => Effect.Effect<void>) | undefined
  /** Pasted input (a redirect URL or `code#state`), raced against the loopback callback. */
  readonly pasted?: Effect.Effect<string> | undefined
  /** Overrides the provider's redirect ports (`--port`). */
  readonly port?: number | undefined
  /** How long to wait for the browser (default AuthConfig.loginTimeout). */
  readonly timeout?: Duration.DurationInput | undefined
}

export interface PkceFlowShape {
  readonly start: (provider: string, options: { readonly redirectUri: string }) => Effect.Effect<PendingLogin, AuthError>
  /** Checks state (constant time) and RFC 9207 `iss`, exchanges the code, verifies the ID token, stores the login. */
  readonly complete: (
    pending: PendingLogin,
    callback: CallbackInput,
    options?: { readonly account?: string | undefined }
  ) => Effect.Effect<OAuthCredential, AuthError>
  /** The whole browser login; the loopback server closes when it ends, however it ends. */
  readonly login: (
    provider: string,
    options?: LoginOptions
  ) => Effect.Effect<OAuthCredential, AuthError, CallbackServer | BrowserLauncher>
}

export class PkceFlow extends Context.Tag("@agent-auth/core/PkceFlow")<PkceFlow, PkceFlowShape>() {}

/**
 * Parse what a person pasted: the full redirect URL, its query string, or `code#state`
 * (the form some providers show on a page). Anything else is taken as a bare code, which
 * then fails the state check: a code without its state is never accepted.
 */
export const parseCallbackInput = (text: string): CallbackInput => {
  const t = text.trim()
  const fromParams = (q: URLSearchParams): CallbackInput => ({
    code: Option.getOrUndefined(Option.map(Option.fromNullable(q.get("code") || null), Redacted.make)),
    state: q.get("state") ?? undefined,
    iss: q.get("iss") ?? undefined,
    error: q.get("error") ?? undefined,
    errorDescription: q.get("error_description") ?? undefined
  })
  if (/^https?:\/\//i.test(t)) {
    try {
      return fromParams(new URL(t).searchParams)
    } catch {
      return {}
    }
  }
  if (/(^|[?&])(code|error)=/.test(t)) return fromParams(new URLSearchParams(t.replace(/^\?/, "")))
  const hash = t.lastIndexOf("#")
  if (hash > 0) return { code: Redacted.make(t.slice(0, hash)), state: t.slice(hash + 1) }
  return t.length > 0 ? { code: Redacted.make(t) } : {}
}

/** Why a callback does not belong to this login, or undefined when it does. */
const stateProblem = (pending: PendingLogin, input: CallbackInput): string | undefined =>
  input.state === undefined
    ? "it has no state"
    : constantTimeEqual(input.state, pending.state)
    ? undefined
    : "its state belongs to another login"

const sha256 = (text: string) =>
  Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))).pipe(
    Effect.map((buf) => base64url(new Uint8Array(buf)))
  )

export const make = Effect.gen(function*() {
  const registry = yield* ProviderRegistry
  const config = yield* AuthConfig
  const context = yield* Effect.context<HttpClient.HttpClient | JwtVerifier | TokenStore | SecureRandom>()

  const start = (providerId: string, options: { readonly redirectUri: string }) =>
    Effect.gen(function*() {
      const provider = yield* registry.get(providerId)
      const metadata = yield* registry.metadata(provider)
      // 64 bytes (86 characters): above RFC 7636's 32-byte minimum, what OpenAI's client sends.
      const codeVerifier = yield* token(64)
      const state = yield* token(32)
      const nonce = provider.scopes.includes("openid") ? yield* token(32) : undefined
      const url = new URL(metadata.authorization_endpoint)
      // The configured extras first, so no entry of them can replace a protocol parameter
      // (config.json refuses such keys; a program's own ProviderConfig is not checked there).
      const params: Record<string, string | undefined> = {
        ...provider.authorizeParams,
        response_type: "code",
        client_id: provider.clientId,
        redirect_uri: options.redirectUri,
        scope: provider.scopes.join(" "),
        code_challenge: yield* sha256(codeVerifier),
        code_challenge_method: "S256",
        state,
        nonce,
        audience: provider.audience,
        resource: provider.resource
      }
      for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v)
      yield* Effect.logDebug("authorization request").pipe(
        Effect.annotateLogs({
          provider: provider.id,
          endpoint: logUrl(metadata.authorization_endpoint),
          redirect_uri: options.redirectUri,
          scope: provider.scopes.join(" "),
          pkce: "S256",
          nonce: nonce === undefined ? "no" : "yes"
        })
      )
      return {
        provider: provider.id,
        authorizationUrl: url.toString(),
        redirectUri: options.redirectUri,
        state,
        codeVerifier: Redacted.make(codeVerifier),
        nonce
      } satisfies PendingLogin
    }).pipe(Effect.provide(context))

  const complete = (pending: PendingLogin, input: CallbackInput, options?: { readonly account?: string | undefined }) =>
    Effect.gen(function*() {
      const provider = yield* registry.get(pending.provider)
      const metadata = yield* registry.metadata(provider)
      const refused = (rule: string, detail: string) =>
        Effect.logDebug("callback refused").pipe(Effect.annotateLogs({ provider: provider.id, rule, detail }))
      const problem = stateProblem(pending, input)
      if (problem !== undefined) {
        yield* refused("state", problem)
        return yield* new StateMismatch({ provider: provider.id })
      }
      // RFC 9207: a response from another issuer is a mix-up attack; when the server
      // advertises `iss`, its absence is refused too.
      if (
        (input.iss !== undefined && input.iss !== metadata.issuer) ||
        (input.iss === undefined && metadata.authorization_response_iss_parameter_supported === true && input.error === undefined)
      ) {
        yield* refused("iss (RFC 9207)", input.iss === undefined ? "no iss although the server sends one" : "another issuer")
        return yield* new AuthorizationDenied({
          provider: provider.id,
          error: "issuer_mismatch",
          description: input.iss === undefined
            ? `the redirect carries no iss although ${metadata.issuer} sends one (RFC 9207)`
            : `the redirect came from ${input.iss}, not ${metadata.issuer} (RFC 9207)`
        })
      }
      if (input.error !== undefined) {
        yield* refused("authorization error", input.error.slice(0, 100))
        // The provider's words, pasted or redirected, reach a terminal: sanitized like every provider text.
        return yield* new AuthorizationDenied({
          provider: provider.id,
          error: sanitize(input.error, 100),
          ...(input.errorDescription === undefined ? {} : { description: sanitize(input.errorDescription, 300) })
        })
      }
      if (input.code === undefined) {
        yield* refused("code", "the redirect carries no code")
        return yield* new AuthorizationDenied({ provider: provider.id, error: "invalid_request", description: "the redirect carries no code" })
      }
      yield* Effect.logDebug("callback accepted").pipe(
        Effect.annotateLogs({ provider: provider.id, rules: input.iss === undefined ? "state" : "state,iss (RFC 9207)" })
      )
      const response = yield* requestTokens(provider, metadata.token_endpoint, {
        grant_type: "authorization_code",
        code: input.code,
        redirect_uri: pending.redirectUri,
        code_verifier: pending.codeVerifier
      }, "form", config.httpTimeout)
      return yield* finishLogin(provider, metadata, response, {
        nonce: pending.nonce,
        account: options?.account,
        expectIdToken: provider.scopes.includes("openid")
      })
    }).pipe(Effect.provide(context))

  const login = (providerId: string, options: LoginOptions = {}) =>
    Effect.gen(function*() {
      const server = yield* CallbackServer
      const browser = yield* BrowserLauncher
      const provider = yield* registry.get(providerId)
      const emit = options.onEvent ?? (() => Effect.void)
      const r = provider.redirect
      const ports = options.port !== undefined ? [options.port] : r.ports
      const listened = yield* Effect.either(server.listen({ provider: provider.id, host: r.host, path: r.path, ports }))
      if (listened._tag === "Left" && options.pasted === undefined) return yield* listened.left
      const redirectUri = listened._tag === "Right"
        ? listened.right.redirectUri
        : `http://${r.host}:${ports.find((p) => p !== 0) ?? 80}${r.path}`
      const pending = yield* start(provider.id, { redirectUri })
      // Wait for the callback before the URL is shown: a fast browser must not find nobody waiting.
      const fromServer = listened._tag === "Right"
        ? Fiber.join(yield* Effect.forkScoped(listened.right.awaitCallback(pending.state)))
        : Effect.never
      yield* emit({ _tag: "AuthorizationUrl", url: pending.authorizationUrl, redirectUri })
      if (listened._tag === "Left") yield* emit({ _tag: "PasteOnly", reason: listened.left.message })
      yield* Effect.logDebug("waiting for the callback").pipe(
        Effect.annotateLogs({
          provider: provider.id,
          listening: listened._tag === "Right" ? "yes" : "no (paste only)",
          paste: options.pasted === undefined ? "no" : "yes"
        })
      )
      const opened = yield* browser.open(pending.authorizationUrl)
      yield* emit(opened._tag === "Opened" ? { _tag: "BrowserOpened" } : { _tag: "BrowserSkipped", reason: opened.reason })

      // Pasted lines are read until one belongs to this login; a wrong one is reported, not fatal.
      const fromPaste = (pasted: Effect.Effect<string>): Effect.Effect<CallbackInput> =>
        Effect.flatMap(pasted, (text) => {
          const input = parseCallbackInput(text)
          const problem = input.error === undefined && input.code === undefined ? "no code in it" : stateProblem(pending, input)
          return problem === undefined
            ? Effect.succeed(input)
            : emit({ _tag: "PasteRejected", reason: problem }).pipe(
              Effect.zipRight(Effect.logDebug("pasted input refused").pipe(Effect.annotateLogs({ provider: provider.id, rule: problem }))),
              Effect.zipRight(fromPaste(pasted))
            )
        })
      const timeout = Duration.decode(options.timeout ?? config.loginTimeout)
      const input = yield* (options.pasted === undefined ? fromServer : Effect.raceFirst(fromServer, fromPaste(options.pasted))).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new LoginTimeout({ provider: provider.id, seconds: Math.round(Duration.toSeconds(timeout)) })
        })
      )
      return yield* complete(pending, input, { account: options.account })
    }).pipe(Effect.scoped)

  return PkceFlow.of({ start, complete, login })
})

export const layer: Layer.Layer<
  PkceFlow,
  never,
  ProviderRegistry | AuthConfig | HttpClient.HttpClient | JwtVerifier | TokenStore | SecureRandom
> = Layer.effect(PkceFlow, make)
