/**
 * The loopback HTTP receiver for one browser login (RFC 8252 §7.3). Its Node layer is in
 * `@agent-auth/node`. It binds 127.0.0.1 (and ::1 too, on the same port, when the redirect
 * host is `localhost`: both or neither), answers only the redirect path, refuses a
 * wrong `state` with 400 and keeps waiting, refuses a non-loopback `Host`, and closes with
 * its scope.
 */
import type { Effect, Redacted, Scope } from "effect"
import { Context } from "effect"
import type { AuthorizationDenied, LoginCancelled, PortUnavailable } from "./Errors.js"

/** What a successful redirect carried. */
export interface CallbackParams {
  readonly code: Redacted.Redacted<string>
  readonly state: string
  /** RFC 9207 `iss`, when the server sent it. */
  readonly iss?: string | undefined
}

export interface ListenOptions {
  readonly provider: string
  /** Host written in the redirect URI (`localhost` or `127.0.0.1`); `localhost` binds ::1 as well as 127.0.0.1. */
  readonly host: string
  readonly path: string
  /** Ports to try in order; `0` is any free port. */
  readonly ports: ReadonlyArray<number>
}

export interface Listener {
  /** `http://{host}:{bound port}{path}`: built after binding, so it is never a guess. */
  readonly redirectUri: string
  /**
   * Waits for the redirect carrying `state`. Requests with another state (or none) are
   * answered 400 and ignored; an `error=` with the right state fails with `AuthorizationDenied`;
   * a newer login taking over the port cancels this one (`LoginCancelled`).
   */
  readonly awaitCallback: (state: string) => Effect.Effect<CallbackParams, AuthorizationDenied | LoginCancelled>
}

export interface CallbackServerShape {
  /** Binds the first free port of `ports`; the server lives until the scope closes. */
  readonly listen: (options: ListenOptions) => Effect.Effect<Listener, PortUnavailable, Scope.Scope>
}

export class CallbackServer extends Context.Tag("@agent-auth/core/CallbackServer")<CallbackServer, CallbackServerShape>() {}
