/**
 * The end of every login (browser, pasted, device): verify the ID token, take the
 * account claims from it, and store the credential. One implementation for all flows.
 */
import { Clock, DateTime, Effect, Option, Redacted } from "effect"
import { AccountClaims, OAuthCredential } from "../Domain.js"
import { JwtInvalid } from "../Errors.js"
import { JwtVerifier } from "../JwtVerifier.js"
import type { AuthServerMetadata, ProviderConfig } from "../Provider.js"
import { TokenStore } from "../TokenStore.js"
import type { TokenResponse } from "./tokenEndpoint.js"
import { toTokenSet } from "./tokenEndpoint.js"

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined)

/** Display and header claims from a verified ID token (OpenAI nests its own under a URL-named claim). */
export const accountClaims = (claims: Readonly<Record<string, unknown>>): AccountClaims => {
  const openai = claims["https://api.openai.com/auth"]
  const o = typeof openai === "object" && openai !== null ? (openai as Record<string, unknown>) : {}
  const fields = {
    subject: str(claims.sub),
    email: str(claims.email),
    name: str(claims.name),
    accountId: str(o.chatgpt_account_id),
    plan: str(o.chatgpt_plan_type),
    organization: str(o.organization_id) ?? str(claims.org_id)
  }
  return AccountClaims.make(
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as ConstructorParameters<typeof AccountClaims>[0]
  )
}

/** The account name a login is stored under when the user gave none. */
export const defaultAccount = (claims: AccountClaims): string =>
  claims.accountId ?? claims.email ?? claims.subject ?? "default"

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
      claims = accountClaims(verified)
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
      tokens: toTokenSet(response, now),
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
