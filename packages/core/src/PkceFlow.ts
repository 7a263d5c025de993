/**
 * Browser login with the authorization-code grant and PKCE S256 (RFC 7636, RFC 8252).
 *
 * `start` and `complete` are separate so a UI server can start a login and finish it
 * later from a pasted redirect URL; `login` wires the loopback `CallbackServer`, the
 * `BrowserLauncher`, and an optional pasted-input source, whichever answers first.
 */
import { Context, type Effect, type Redacted } from "effect"
import type { OAuthCredential } from "./Domain.js"

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
  /** Do not bind a loopback server at all: the redirect URL must be pasted. */
  readonly pasteOnly?: boolean | undefined
}

export interface PkceFlowShape {
  readonly start: (provider: string, options: { readonly redirectUri: string }) => Effect.Effect<PendingLogin, import("./Errors.js").AuthError>
  /** Checks state (constant time) and RFC 9207 `iss`, exchanges the code, verifies the ID token, stores the login. */
  readonly complete: (
    pending: PendingLogin,
    callback: CallbackInput,
    options?: { readonly account?: string | undefined }
  ) => Effect.Effect<OAuthCredential, import("./Errors.js").AuthError>
  /** The whole browser login; the loopback server closes when it ends, however it ends. */
  readonly login: (provider: string, options?: LoginOptions) => Effect.Effect<OAuthCredential, import("./Errors.js").AuthError>
}

export class PkceFlow extends Context.Tag("@agent-auth/core/PkceFlow")<PkceFlow, PkceFlowShape>() {}
