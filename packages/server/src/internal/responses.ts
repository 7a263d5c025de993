/**
 * What the routes answer: errors as JSON with an HTTP status by kind, and stored logins
 * summarised without any secret.
 */
import type { AuthError, Domain } from "@agent-auth/core"
import { HttpServerResponse } from "@effect/platform"
import { DateTime } from "effect"

/** The host application named no principal for the request. */
export const unauthenticated = HttpServerResponse.unsafeJson(
  { error: "Unauthenticated", message: "Sign in to this service first: the request names no user." },
  { status: 401 }
)

/** The HTTP status of an error: the user's fault (4xx), the provider's (502), ours (500). */
const statusOf = (e: AuthError): number => {
  switch (e._tag) {
    case "SignInRefused":
      return e.reason === "principal" ? 403 : 400
    case "UnknownProvider":
      return 404
    case "StateMismatch":
    case "AuthorizationDenied":
    case "NotLoggedIn":
    case "ReauthRequired":
    case "LoginCancelled":
    case "LoginTimeout":
      return 400
    case "TokenEndpointError":
    case "NetworkError":
    case "JwtInvalid":
    case "DiscoveryError":
    case "PortUnavailable":
      return 502
    default:
      return 500
  }
}

/** Error messages hold no secret by construction (see core's Errors.ts), so they are shown as they are. */
export const errorResponse = (e: AuthError) =>
  HttpServerResponse.unsafeJson({ error: e._tag, message: e.message }, { status: statusOf(e) })

/** A stored login as the status route shows it: who and until when, never a token. */
export interface LoginSummary {
  readonly provider: string
  readonly account: string
  readonly kind: "oauth" | "api_key"
  readonly email?: string
  readonly expiresAt?: string
  readonly scopes?: ReadonlyArray<string>
}

export const summarize = (c: Domain.StoredCredential): LoginSummary =>
  c._tag === "ApiKeyCredential"
    ? { provider: c.provider, account: c.account, kind: "api_key" }
    : {
      provider: c.provider,
      account: c.account,
      kind: "oauth",
      ...(c.claims.email === undefined ? {} : { email: c.claims.email }),
      ...(c.tokens.expiresAt === undefined ? {} : { expiresAt: DateTime.formatIso(c.tokens.expiresAt) }),
      scopes: c.tokens.scopes
    }
