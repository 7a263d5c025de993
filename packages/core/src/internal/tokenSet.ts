/**
 * A token endpoint's answer as the `TokenSet` we keep. Its expiry is bounded before it is
 * trusted (shared/DESIGN.md, "Refresh rules"): `expires_in` must be a finite number of
 * seconds in (0, 10 years] — a numeric string such as `"3600"` is taken as that number —
 * else the tokens are still kept (the refresh token is the login) with the expiry unknown,
 * and a debug line names the oddity. `0` or a negative value would make every call refresh;
 * `1e20` or `1e309` (JSON's Infinity) would make an invalid date. Without `expires_in`, a
 * JWT access token's `exp` is used under the same bounds.
 */
import { Clock, DateTime, Effect, Redacted } from "effect"
import { TokenSet } from "../Domain.js"
import type { TokenResponse } from "./tokenEndpoint.js"

/** The longest lifetime believed: 10 years (with leap days), in seconds. */
export const maxExpiresInSeconds = 3653 * 24 * 60 * 60

export interface Expiry {
  readonly expiresAt: DateTime.Utc | undefined
  /** What was odd about the answer's expiry, for the debug log (never a token). */
  readonly oddity: string | undefined
}

const inBounds = (seconds: number): boolean => Number.isFinite(seconds) && seconds > 0 && seconds <= maxExpiresInSeconds

const numericString = /^\s*[0-9]{1,15}(\.[0-9]{1,9})?\s*$/

/** The expiry of a JWT access token from its `exp`, unverified: used only to schedule refreshes. */
const jwtExp = (token: string): unknown => {
  const part = token.split(".")[1]
  if (part === undefined) return undefined
  try {
    const payload = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: unknown }
    return payload.exp
  } catch {
    return undefined
  }
}

/** When the access token of an answer expires, if the answer says so believably. */
export const expiryOf = (expiresIn: unknown, accessToken: string, nowMillis: number): Expiry => {
  if (expiresIn === undefined || expiresIn === null) {
    const exp = jwtExp(accessToken)
    if (exp === undefined) return { expiresAt: undefined, oddity: "no expires_in (and no JWT exp): expiry unknown" }
    if (typeof exp !== "number" || !inBounds(exp - nowMillis / 1000)) {
      return { expiresAt: undefined, oddity: "no expires_in, and the access token's exp is not within (now, now + 10 years]: expiry unknown" }
    }
    return { expiresAt: DateTime.unsafeMake(exp * 1000), oddity: undefined }
  }
  let seconds: number
  let note: string | undefined
  if (typeof expiresIn === "number") {
    seconds = expiresIn
  } else if (typeof expiresIn === "string" && numericString.test(expiresIn)) {
    seconds = Number(expiresIn)
    note = `expires_in was the string "${expiresIn.trim()}": taken as ${seconds} s`
  } else {
    return { expiresAt: undefined, oddity: `expires_in is a ${typeof expiresIn}, not a number: expiry unknown` }
  }
  if (!inBounds(seconds)) {
    return { expiresAt: undefined, oddity: `expires_in ${String(seconds)} is not within (0, 10 years]: expiry unknown` }
  }
  return { expiresAt: DateTime.unsafeMake(nowMillis + seconds * 1000), oddity: note }
}

/**
 * A `TokenSet` from a response, its expiry bounded (see above). On refresh, `previous`
 * supplies what the answer left out (the refresh token when it did not rotate, the ID
 * token, the scopes).
 */
export const tokenSetOf = (
  provider: string,
  response: TokenResponse,
  previous?: TokenSet
): Effect.Effect<TokenSet> =>
  Effect.gen(function*() {
    const expiry = expiryOf(response.expires_in, Redacted.value(response.access_token), yield* Clock.currentTimeMillis)
    if (expiry.oddity !== undefined) {
      yield* Effect.logDebug(`token answer: ${expiry.oddity}`).pipe(
        Effect.annotateLogs({ provider, rule: "expires_in" })
      )
    }
    const refreshToken = response.refresh_token ?? previous?.refreshToken
    const idToken = response.id_token ?? previous?.idToken
    return TokenSet.make({
      accessToken: response.access_token,
      ...(refreshToken === undefined ? {} : { refreshToken }),
      ...(idToken === undefined ? {} : { idToken }),
      ...(expiry.expiresAt === undefined ? {} : { expiresAt: expiry.expiresAt }),
      scopes: response.scope !== undefined ? response.scope.split(" ").filter((s) => s.length > 0) : previous?.scopes ?? [],
      tokenType: response.token_type ?? previous?.tokenType ?? "Bearer"
    })
  })
