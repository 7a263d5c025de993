/**
 * How a key or a login becomes the `Credential` a model call sends: headers, base URL and
 * source, per provider. Pure functions, so `CredentialResolver`'s hot path stays a few
 * allocations.
 */
import { Redacted } from "effect"
import type { Credential, CredentialSource, OAuthCredential } from "../Domain.js"
import { NotLoggedIn } from "../Errors.js"
import { loginCommand, type ProviderConfig } from "../Provider.js"

/** Anthropic's API refuses requests without a version header. */
export const ANTHROPIC_VERSION = "2023-06-01"

const bearer = (secret: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(`Bearer ${Redacted.value(secret)}`)

/** Where API-key calls go: the key base URL, else the OAuth one, else the issuer. */
export const apiKeyBaseUrl = (provider: ProviderConfig): string =>
  provider.apiKeyBaseUrl ?? provider.apiBaseUrl ?? provider.issuer ?? ""

/** Where bearer calls go: the provider's API base URL, else its issuer. */
export const bearerBaseUrl = (provider: ProviderConfig): string => provider.apiBaseUrl ?? provider.issuer ?? ""

export const apiKeyCredential = (
  provider: ProviderConfig,
  key: Redacted.Redacted<string>,
  source: CredentialSource
): Credential => {
  const headers: Record<string, Redacted.Redacted<string>> = {}
  if (provider.apiKeyHeader.toLowerCase() === "authorization") headers["Authorization"] = bearer(key)
  else headers[provider.apiKeyHeader] = key
  if (provider.id === "anthropic") headers["anthropic-version"] = Redacted.make(ANTHROPIC_VERSION)
  return {
    _tag: "ApiKey",
    provider: provider.id,
    key,
    headers,
    baseUrl: apiKeyBaseUrl(provider),
    expiresAt: undefined,
    source
  }
}

export const bearerCredential = (provider: ProviderConfig, login: OAuthCredential, store: string): Credential => {
  const token = login.tokens.accessToken
  const headers: Record<string, Redacted.Redacted<string>> = { Authorization: bearer(token) }
  if (provider.kind === "openai") {
    // The ChatGPT backend routes by workspace; without the id it picks the personal one.
    if (login.claims.accountId !== undefined) headers["ChatGPT-Account-Id"] = Redacted.make(login.claims.accountId)
    if (provider.originator !== undefined) headers["originator"] = Redacted.make(provider.originator)
  }
  return {
    _tag: "Bearer",
    provider: provider.id,
    account: login.account,
    token,
    headers,
    baseUrl: bearerBaseUrl(provider),
    expiresAt: login.tokens.expiresAt,
    claims: login.claims,
    source: { _tag: "OAuth", store }
  }
}

/** "No usable credential": names the variables that would supply a key only where keys are taken. */
export const notLoggedIn = (provider: ProviderConfig, account?: string): NotLoggedIn => {
  const command = loginCommand(provider)
  return new NotLoggedIn({
    provider: provider.id,
    envVars: provider.takesApiKey ? provider.apiKeyEnv : [],
    canLogin: provider.canLogin,
    ...(account === undefined ? {} : { account }),
    ...(command === undefined ? {} : { command })
  })
}
