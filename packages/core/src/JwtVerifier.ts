/**
 * ID token verification with jose: the JWKS is fetched through `HttpClient`, cached, and
 * refetched once on an unknown `kid` (at most once per cool-down); algorithms come from an
 * allow-list (never `none`, never HMAC for an asymmetric issuer); `iss`, `aud`, `azp`,
 * `exp`, `nbf`, `iat` and `nonce` are checked against Effect's `Clock`, with a 30 s tolerance.
 */
import type { Redacted } from "effect"
import { Context, type Effect } from "effect"
import type { JwtInvalid } from "./Errors.js"

export interface VerifyOptions {
  readonly issuer: string
  readonly jwksUri: string
  /** The client id: `aud` must contain it (and `azp` equal it when `aud` has several). */
  readonly clientId: string
  /** Algorithms the issuer advertises (`id_token_signing_alg_values_supported`); intersected with our allow-list. */
  readonly algorithms?: ReadonlyArray<string> | undefined
  /** The nonce this login sent; the token must carry it. */
  readonly nonce?: string | undefined
}

/** The payload of a verified token. */
export type VerifiedClaims = Readonly<Record<string, unknown>> & {
  readonly iss: string
  readonly sub: string
  readonly aud: string | ReadonlyArray<string>
  readonly exp: number
}

export interface JwtVerifierShape {
  readonly verify: (token: Redacted.Redacted<string>, options: VerifyOptions) => Effect.Effect<VerifiedClaims, JwtInvalid>
}

export class JwtVerifier extends Context.Tag("@agent-auth/core/JwtVerifier")<JwtVerifier, JwtVerifierShape>() {}
