/**
 * The domain: tokens as they come from a provider, credentials as they are stored, and
 * the `Credential` a model call needs. Every secret is `Redacted` from the moment it is
 * decoded; the encoded side (the JSON written to a store) holds the plain string.
 */
import { DateTime, Redacted, Schema } from "effect"

/** A provider id: lower-case letters, digits, `-` and `_` (it names files and keys, so no path characters). */
export const ProviderId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,63}$/),
  Schema.annotations({ description: "a provider id: a-z, 0-9, - and _" })
)

/** Which stored credential: one provider, one account. */
export interface CredentialKey {
  readonly provider: string
  readonly account: string
}

export const keyString = (key: CredentialKey): string => `${key.provider}/${key.account}`

/** The secret as a Redacted string, decoded from / encoded to the plain string. */
export const Secret = Schema.Redacted(Schema.String)

/** What a token endpoint gave us. */
export class TokenSet extends Schema.Class<TokenSet>("TokenSet")({
  accessToken: Secret,
  refreshToken: Schema.optional(Secret),
  idToken: Schema.optional(Secret),
  /** When the access token expires, when the provider said (or its JWT `exp` says). */
  expiresAt: Schema.optional(Schema.DateTimeUtc),
  scopes: Schema.Array(Schema.String),
  tokenType: Schema.String
}) {}

/** Claims kept for display and for request headers; taken from a verified ID token. */
export class AccountClaims extends Schema.Class<AccountClaims>("AccountClaims")({
  subject: Schema.optional(Schema.String),
  email: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  /** OpenAI: `chatgpt_account_id` (sent as `ChatGPT-Account-Id`). */
  accountId: Schema.optional(Schema.String),
  plan: Schema.optional(Schema.String),
  organization: Schema.optional(Schema.String)
}) {}

const claimString = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined)
const claimObject = (v: unknown): Record<string, unknown> => (typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {})

/**
 * Display and header claims from an ID token payload. OpenAI nests its own under
 * URL-named claims. Callers decide whether the payload was verified: only a verified
 * one may feed request headers.
 */
export const accountClaimsOf = (claims: Readonly<Record<string, unknown>>): AccountClaims => {
  const openai = claimObject(claims["https://api.openai.com/auth"])
  const profile = claimObject(claims["https://api.openai.com/profile"])
  const fields = {
    subject: claimString(claims.sub),
    email: claimString(claims.email) ?? claimString(profile.email),
    name: claimString(claims.name),
    accountId: claimString(openai.chatgpt_account_id),
    plan: claimString(openai.chatgpt_plan_type),
    organization: claimString(openai.organization_id) ?? claimString(claims.org_id)
  }
  return AccountClaims.make(
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as ConstructorParameters<typeof AccountClaims>[0]
  )
}

/** The account name a login is stored under when the user gave none: account id, else email, else subject. */
export const defaultAccount = (claims: AccountClaims): string =>
  claims.accountId ?? claims.email ?? claims.subject ?? "default"

/**
 * The provider refused this login's refresh token (`invalid_grant`, …): remembered on the
 * stored login so `status` shows it and `token` fails at once, until a new login replaces it.
 */
export class Refusal extends Schema.Class<Refusal>("Refusal")({
  /** The provider's OAuth error code (or `HTTP 401`); never a token. */
  reason: Schema.String,
  at: Schema.DateTimeUtc
}) {}

/** An OAuth login as stored. */
export class OAuthCredential extends Schema.TaggedClass<OAuthCredential>()("OAuthCredential", {
  provider: ProviderId,
  /** The account name this login is stored under (`--account`, else account id or email). */
  account: Schema.String,
  tokens: TokenSet,
  claims: AccountClaims,
  obtainedAt: Schema.DateTimeUtc,
  /** When the tokens were last refreshed; with `obtainedAt`, where the token's lifetime starts. */
  refreshedAt: Schema.optional(Schema.DateTimeUtc),
  refusal: Schema.optional(Refusal)
}) {}

/** An API key stored by `login --with-api-key`. */
export class ApiKeyCredential extends Schema.TaggedClass<ApiKeyCredential>()("ApiKeyCredential", {
  provider: ProviderId,
  account: Schema.String,
  key: Secret,
  obtainedAt: Schema.DateTimeUtc
}) {}

export const StoredCredential = Schema.Union(OAuthCredential, ApiKeyCredential)
export type StoredCredential = typeof StoredCredential.Type

export const credentialKey = (c: StoredCredential): CredentialKey => ({ provider: c.provider, account: c.account })

/** Where a resolved credential came from. */
export type CredentialSource =
  | { readonly _tag: "Env"; readonly variable: string }
  | { readonly _tag: "Config"; readonly path: string }
  | { readonly _tag: "StoredKey"; readonly store: string }
  | { readonly _tag: "OAuth"; readonly store: string }
  /**
   * Google's Application Default Credentials: the file, its type and who it is (the
   * service account, or the gcloud user and quota project); never copied into a store.
   * Type and account are unknown when the file cannot be used.
   */
  | {
    readonly _tag: "Adc"
    readonly path: string
    readonly type?: "authorized_user" | "service_account"
    readonly account?: string
  }

interface CredentialBase {
  readonly provider: string
  /** Headers a request must carry, secrets included (hence Redacted). */
  readonly headers: Readonly<Record<string, Redacted.Redacted<string>>>
  /** Where model calls go with this credential. */
  readonly baseUrl: string
  readonly source: CredentialSource
}

/** What a model call needs: an API key, or an OAuth bearer token. */
export type Credential =
  | CredentialBase & {
    readonly _tag: "ApiKey"
    readonly key: Redacted.Redacted<string>
    readonly expiresAt: undefined
  }
  | CredentialBase & {
    readonly _tag: "Bearer"
    readonly account: string
    readonly token: Redacted.Redacted<string>
    readonly expiresAt: DateTime.Utc | undefined
    readonly claims: AccountClaims
  }

/** The secret of a credential (the token or key). */
export const credentialSecret = (c: Credential): Redacted.Redacted<string> => c._tag === "ApiKey" ? c.key : c.token

/**
 * The one place a credential becomes plain JSON (`agent-auth token --json`): secrets
 * included, so callers must only send it to the user who asked.
 */
export const credentialToJson = (c: Credential): Record<string, unknown> => ({
  type: c._tag === "ApiKey" ? "api_key" : "bearer",
  provider: c.provider,
  ...(c._tag === "Bearer" ? { account: c.account } : {}),
  secret: Redacted.value(credentialSecret(c)),
  headers: Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, Redacted.value(v)])),
  base_url: c.baseUrl,
  expires_at: c.expiresAt === undefined ? null : DateTime.formatIso(c.expiresAt),
  source: c.source
})

/**
 * A token masked for display, always in one shape: four characters, an ellipsis, four
 * characters (`sk-p…8c0e`). Only a secret of 40 characters or more shows its ends (then at
 * most a fifth of it); a shorter one is all stars (`****…****`).
 */
export const mask = (secret: Redacted.Redacted<string>): string => {
  const s = Redacted.value(secret)
  return s.length < 40 ? "****…****" : `${s.slice(0, 4)}…${s.slice(-4)}`
}
