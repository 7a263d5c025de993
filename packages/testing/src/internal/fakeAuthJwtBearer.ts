/**
 * RFC 7523 §2.1, the JWT bearer grant, as Google's token endpoint takes it from a service
 * account (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion=<JWT>`):
 * the assertion is verified against the public key registered for its issuer (RS256
 * only), and its `iss` and `sub` must be that service account, `aud` this token endpoint,
 * `exp` in the future and at most an hour after `iat`, `scope` present.
 */
import * as jose from "jose"
import * as S from "./fakeAuthState.js"

export const grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

export interface ServiceAccount {
  readonly clientEmail: string
  /** Its public key, SPKI PEM (`-----BEGIN PUBLIC KEY-----`). */
  readonly publicKey: string
}

export interface Verified {
  readonly clientEmail: string
  readonly scope: string
}

/** The service account and scope of a valid assertion, or the OAuth failure to answer. */
export const verifyAssertion = async (
  assertion: string | undefined,
  accounts: ReadonlyArray<ServiceAccount>,
  audience: string,
  nowMillis: number
): Promise<Verified | S.OAuthFailure> => {
  if (assertion === undefined) return S.failure("invalid_request", "assertion is required")
  let claims: jose.JWTPayload
  try {
    claims = jose.decodeJwt(assertion)
  } catch {
    return S.failure("invalid_grant", "the assertion is not a JWT")
  }
  const account = accounts.find((a) => a.clientEmail === claims.iss)
  if (account === undefined) return S.failure("invalid_grant", "unknown service account (iss)")
  try {
    const key = await jose.importSPKI(account.publicKey, "RS256")
    const { payload } = await jose.jwtVerify(assertion, key, {
      algorithms: ["RS256"],
      issuer: account.clientEmail,
      subject: account.clientEmail,
      audience,
      currentDate: new Date(nowMillis),
      requiredClaims: ["iat", "exp"]
    })
    if (payload.exp! - payload.iat! > 3600) return S.failure("invalid_grant", "exp is more than an hour after iat")
    if (typeof payload.scope !== "string" || payload.scope === "") return S.failure("invalid_scope", "scope is required")
    return { clientEmail: account.clientEmail, scope: payload.scope }
  } catch (e) {
    return S.failure("invalid_grant", `invalid assertion: ${e instanceof Error ? e.message : "unverifiable"}`)
  }
}
