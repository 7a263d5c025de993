/**
 * The end of every login (browser, pasted, device): verify the ID token, take the
 * account claims from it, and store the credential. One implementation for all flows.
 */
import { Clock, DateTime, Effect, Option, Redacted } from "effect"
import { AccountClaims, accountClaimsOf, defaultAccount, OAuthCredential } from "../Domain.js"
import { JwtInvalid } from "../Errors.js"
import { JwtVerifier } from "../JwtVerifier.js"
import type { AuthServerMetadata, ProviderConfig } from "../Provider.js"
import { TokenStore } from "../TokenStore.js"
import type { TokenResponse } from "./tokenEndpoint.js"
import { tokenSetOf } from "./tokenSet.js"

export const finishLogin = (
  provider: ProviderConfig,
  metadata: AuthServerMetadata,
  response: TokenResponse,
  options: { readonly nonce?: string | undefined; readonly account?: string | undefined; readonly expectIdToken: boolean }
) =>
  Effect.gen(function*() {
    const verifier = yield* JwtVerifier
    const store = yield* TokenStore
    let claims = AccountClaims.make({})
    if (response.id_token !== undefined && metadata.jwks_uri !== undefined) {
      const verified = yield* verifier.verify(response.id_token, {
        issuer: metadata.issuer,
        jwksUri: metadata.jwks_uri,
        clientId: provider.clientId ?? "",
        algorithms: metadata.id_token_signing_alg_values_supported,
        nonce: options.nonce
      })
      claims = accountClaimsOf(verified)
    } else if (options.expectIdToken) {
      // We asked for `openid`: an answer without a verifiable ID token is not an identity.
      return yield* new JwtInvalid({
        rule: "format",
        detail: response.id_token === undefined ? "the token response has no id_token" : "the issuer publishes no jwks_uri"
      })
    }
    const now = DateTime.unsafeMake(yield* Clock.currentTimeMillis)
    const credential = OAuthCredential.make({
      provider: provider.id,
      account: options.account ?? defaultAccount(claims),
      tokens: yield* tokenSetOf(provider.id, response),
      claims,
      obtainedAt: now
    })
    yield* store.set(credential)
    return credential
  })

/** Equal-length strings compared without an early exit, so timing does not reveal a prefix. */
export const constantTimeEqual = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

export const redactedOption = (s: string | null | undefined) =>
  Option.map(Option.fromNullable(s === "" ? undefined : s), Redacted.make)
