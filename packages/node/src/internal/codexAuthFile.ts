/**
 * The Codex CLI's `auth.json` (`$CODEX_HOME/auth.json`), read and written with the rules
 * Codex itself applies (shared/PROVIDERS.md, and Codex's `AuthDotJson` / `TokenData`):
 *
 * ```json
 * { "auth_mode": "chatgpt", "OPENAI_API_KEY": null,
 *   "tokens": { "id_token": "<JWT>", "access_token": "<JWT>", "refresh_token": "…", "account_id": "…" },
 *   "last_refresh": "2026-01-01T00:00:00Z" }
 * ```
 *
 * - `OPENAI_API_KEY` is a string or null, and always written (null when absent).
 * - `tokens.id_token` must be three non-empty dot-separated parts whose middle one is
 *   unpadded base64url JSON, or Codex refuses the whole file; `access_token` and
 *   `refresh_token` are required strings; `account_id` a string or null.
 * - Which login the file holds is Codex's rule: `auth_mode` when present, else an API key
 *   when `OPENAI_API_KEY` is set, else the ChatGPT tokens.
 * - Fields we do not know (top level and inside `tokens`) are kept through every rewrite.
 *
 * Pure functions: no I/O. Every value that may be a secret is `Redacted` from the parse
 * on, fields we do not know included (they may hold tokens of a newer Codex); error
 * reasons name fields, never values.
 */
import { Domain } from "@agent-auth/core"
import { DateTime, Either, Option, Redacted } from "effect"

type Json = Record<string, unknown>

/** The ChatGPT tokens of a Codex login. */
export interface CodexTokens {
  readonly idToken: Redacted.Redacted<string>
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken: Redacted.Redacted<string>
  readonly accountId: string | undefined
  /** Fields of `tokens` we do not know, kept as they were. */
  readonly unknown: Redacted.Redacted<Json>
}

/** A parsed `auth.json`. */
export interface CodexAuthFile {
  /** `auth_mode` as written (Codex knows `apikey` and `chatgpt`, and newer modes). */
  readonly authMode: string | undefined
  readonly apiKey: Redacted.Redacted<string> | undefined
  readonly tokens: CodexTokens | undefined
  /** `last_refresh`, kept as written. */
  readonly lastRefresh: string | undefined
  /** Top-level fields we do not know, kept as they were. */
  readonly unknown: Redacted.Redacted<Json>
}

/** Why a file is not one Codex would read; `field` is where (`tokens.id_token`), never a value. */
export interface Malformed {
  readonly field: string
  readonly reason: string
}

const malformed = (field: string, reason: string) => Either.left<Malformed>({ field, reason })

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

const omit = (o: Json, keys: ReadonlyArray<string>): Json =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)))

const base64UrlNoPad = /^[A-Za-z0-9_-]+$/

/**
 * A JWT's payload, read (not verified) the way Codex reads an ID token: three non-empty
 * parts, the middle one unpadded base64url of a JSON object. Left says which rule failed.
 */
export const jwtPayload = (jwt: string): Either.Either<Json, string> => {
  const parts = jwt.split(".")
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) return Either.left("not a three-part JWT")
  const payload = parts[1]!
  if (!base64UrlNoPad.test(payload) || payload.length % 4 === 1) return Either.left("its payload is not unpadded base64url")
  try {
    const json: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))
    return isObject(json) ? Either.right(json) : Either.left("its payload is not a JSON object")
  } catch {
    return Either.left("its payload is not JSON")
  }
}

const optionalString = (o: Json, key: string, field: string): Either.Either<string | undefined, Malformed> => {
  const v = o[key]
  if (v === undefined || v === null) return Either.right(undefined)
  return typeof v === "string" ? Either.right(v) : malformed(field, "it is not a string")
}

const requiredString = (o: Json, key: string, field: string): Either.Either<string, Malformed> => {
  const v = o[key]
  if (v === undefined || v === null) return malformed(field, "it is missing")
  return typeof v === "string" ? Either.right(v) : malformed(field, "it is not a string")
}

const TOKEN_FIELDS = ["id_token", "access_token", "refresh_token", "account_id"] as const
const TOP_FIELDS = ["auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"] as const

const parseTokens = (v: unknown): Either.Either<CodexTokens | undefined, Malformed> =>
  Either.gen(function*() {
    if (v === undefined || v === null) return undefined
    if (!isObject(v)) return yield* malformed("tokens", "it is not an object")
    const idToken = yield* requiredString(v, "id_token", "tokens.id_token")
    const jwt = jwtPayload(idToken)
    if (Either.isLeft(jwt)) return yield* malformed("tokens.id_token", `${jwt.left} (it must be a JWT)`)
    const accessToken = yield* requiredString(v, "access_token", "tokens.access_token")
    const refreshToken = yield* requiredString(v, "refresh_token", "tokens.refresh_token")
    const accountId = yield* optionalString(v, "account_id", "tokens.account_id")
    return {
      idToken: Redacted.make(idToken),
      accessToken: Redacted.make(accessToken),
      refreshToken: Redacted.make(refreshToken),
      accountId,
      unknown: Redacted.make(omit(v, TOKEN_FIELDS))
    }
  })

/** Parses the text of an `auth.json` with Codex's rules. */
export const parse = (text: string): Either.Either<CodexAuthFile, Malformed> =>
  Either.gen(function*() {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return yield* malformed("(file)", "it is not JSON")
    }
    if (!isObject(json)) return yield* malformed("(file)", "it is not a JSON object")
    const authMode = yield* optionalString(json, "auth_mode", "auth_mode")
    const apiKey = yield* optionalString(json, "OPENAI_API_KEY", "OPENAI_API_KEY")
    const tokens = yield* parseTokens(json.tokens)
    const lastRefresh = yield* optionalString(json, "last_refresh", "last_refresh")
    if (lastRefresh !== undefined && Option.isNone(DateTime.make(lastRefresh))) {
      return yield* malformed("last_refresh", "it is not an RFC 3339 date")
    }
    return {
      authMode,
      apiKey: apiKey === undefined ? undefined : Redacted.make(apiKey),
      tokens,
      lastRefresh,
      unknown: Redacted.make(omit(json, TOP_FIELDS))
    }
  })

/** The file's JSON, in Codex's field order; unknown fields follow the known ones. */
export const render = (file: CodexAuthFile): string => {
  const t = file.tokens
  const json: Json = {
    ...(file.authMode === undefined ? {} : { auth_mode: file.authMode }),
    OPENAI_API_KEY: file.apiKey === undefined ? null : Redacted.value(file.apiKey),
    ...(t === undefined ? {} : {
      tokens: {
        id_token: Redacted.value(t.idToken),
        access_token: Redacted.value(t.accessToken),
        refresh_token: Redacted.value(t.refreshToken),
        account_id: t.accountId ?? null,
        ...Redacted.value(t.unknown)
      }
    }),
    ...(file.lastRefresh === undefined ? {} : { last_refresh: file.lastRefresh }),
    ...Redacted.value(file.unknown)
  }
  return JSON.stringify(json, null, 2) + "\n"
}

/** Which login Codex would use: `apikey`, `chatgpt`, or none (an empty file, or a mode we cannot use). */
export const activeLogin = (file: CodexAuthFile): "apikey" | "chatgpt" | undefined => {
  const mode = file.authMode ?? (file.apiKey !== undefined ? "apikey" : "chatgpt")
  if (mode.toLowerCase() === "apikey") return file.apiKey !== undefined && Redacted.value(file.apiKey).length > 0 ? "apikey" : undefined
  // `chatgpt`, and `chatgptAuthTokens` (tokens handed to Codex by a host app): both are the tokens.
  if (mode.toLowerCase().startsWith("chatgpt")) return file.tokens !== undefined ? "chatgpt" : undefined
  return undefined
}

/**
 * Display claims from an ID token payload, read without verification: Codex's file says
 * nothing about whether its tokens were verified, so these are for `status` only. The
 * account id is `tokens.account_id` (what Codex sends as `ChatGPT-Account-Id`), falling
 * back to the token's own claim.
 */
export const displayClaims = (payload: Json, accountId: string | undefined): Domain.AccountClaims => {
  const claims = Domain.accountClaimsOf(payload)
  return accountId === undefined ? claims : Domain.AccountClaims.make({ ...claims, accountId })
}

/** The account name a login gets in this file: what `login` would name it. */
export const accountOf = Domain.defaultAccount

/** The account an API key in this file is stored under (as `login --with-api-key` names it). */
export const API_KEY_ACCOUNT = "default"

const scopesOf = (payload: Json | undefined): ReadonlyArray<string> => {
  const scp = payload?.scp
  if (Array.isArray(scp)) return scp.filter((s): s is string => typeof s === "string")
  const scope = payload?.scope
  return typeof scope === "string" ? scope.split(" ").filter((s) => s.length > 0) : []
}

/**
 * The login the file holds, as a stored credential of `provider`. `fallbackTime` (the
 * file's mtime) stands for when it was obtained if `last_refresh` does not say.
 */
export const toCredential = (
  file: CodexAuthFile,
  provider: string,
  fallbackTime: DateTime.Utc
): Option.Option<Domain.StoredCredential> => {
  switch (activeLogin(file)) {
    case "apikey":
      return Option.some(Domain.ApiKeyCredential.make({
        provider,
        account: API_KEY_ACCOUNT,
        key: file.apiKey!,
        obtainedAt: fallbackTime
      }))
    case "chatgpt": {
      const t = file.tokens!
      const id = Either.getOrElse(jwtPayload(Redacted.value(t.idToken)), () => ({}))
      const access = Either.getOrUndefined(jwtPayload(Redacted.value(t.accessToken)))
      const claims = displayClaims(id, t.accountId)
      const exp = typeof access?.exp === "number" ? DateTime.make(access.exp * 1000) : Option.none()
      const refreshed = file.lastRefresh === undefined ? Option.none() : DateTime.make(file.lastRefresh)
      return Option.some(Domain.OAuthCredential.make({
        provider,
        account: accountOf(claims),
        tokens: Domain.TokenSet.make({
          accessToken: t.accessToken,
          refreshToken: t.refreshToken,
          idToken: t.idToken,
          ...(Option.isSome(exp) ? { expiresAt: exp.value } : {}),
          scopes: scopesOf(access),
          tokenType: "Bearer"
        }),
        claims,
        obtainedAt: Option.getOrElse(refreshed, () => fallbackTime),
        ...(Option.isSome(refreshed) ? { refreshedAt: refreshed.value } : {})
      }))
    }
    case undefined:
      return Option.none()
  }
}

/** An empty file's fields, for a first write. */
export const empty: CodexAuthFile = {
  authMode: undefined,
  apiKey: undefined,
  tokens: undefined,
  lastRefresh: undefined,
  unknown: Redacted.make({})
}

/**
 * The file after storing `credential` over `previous`, as Codex would write that login:
 * an API key drops the tokens (Codex's API-key login has none); a ChatGPT login keeps
 * `OPENAI_API_KEY` as it was (Codex's own field). Unknown fields stay. Left when Codex could
 * not read the result (no refresh token, or an ID token that is not a JWT).
 */
export const withCredential = (
  previous: CodexAuthFile,
  credential: Domain.StoredCredential
): Either.Either<CodexAuthFile, string> => {
  if (credential._tag === "ApiKeyCredential") {
    return Either.right({ ...previous, authMode: "apikey", apiKey: credential.key, tokens: undefined, lastRefresh: undefined })
  }
  const t = credential.tokens
  if (t.refreshToken === undefined) return Either.left("Codex requires a refresh token and this login has none")
  if (t.idToken === undefined) return Either.left("Codex requires an ID token and this login has none")
  const jwt = jwtPayload(Redacted.value(t.idToken))
  if (Either.isLeft(jwt)) return Either.left(`Codex requires the ID token to be a JWT, and it is ${jwt.left}`)
  return Either.right({
    ...previous,
    authMode: "chatgpt",
    tokens: {
      idToken: t.idToken,
      accessToken: t.accessToken,
      refreshToken: t.refreshToken,
      accountId: credential.claims.accountId,
      unknown: previous.tokens?.unknown ?? Redacted.make({})
    },
    lastRefresh: DateTime.formatIso(credential.refreshedAt ?? credential.obtainedAt)
  })
}
