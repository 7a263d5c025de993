/**
 * Provider configuration: what we know about an authorization server and the model API
 * behind it. Built-ins are defined here; `config.json` can override any field of them and
 * add `oidc` providers. Values for OpenAI come from its public Codex CLI (shared/PROVIDERS.md):
 * they belong to another product's registration and can change, hence all overridable.
 */
import { Schema } from "effect"
import { ProviderId, Secret } from "./Domain.js"

/** `google_adc`: a bearer token from Google's Application Default Credentials (the `vertex` built-in); `mcp`: an MCP server. */
export const ProviderKind = Schema.Literal("openai", "oidc", "api_key", "google_adc", "mcp")
export type ProviderKind = typeof ProviderKind.Type

/** Which credential wins when several exist (config.json `mode`). */
export const CredentialMode = Schema.Literal("auto", "prefer_oauth", "api_key_only", "oauth_only")
export type CredentialMode = typeof CredentialMode.Type

/** Explicit endpoints; any of them replaces what discovery (or the kind's defaults) say. */
export const EndpointOverrides = Schema.Struct({
  authorization: Schema.optional(Schema.String),
  token: Schema.optional(Schema.String),
  revocation: Schema.optional(Schema.String),
  jwks: Schema.optional(Schema.String),
  deviceAuthorization: Schema.optional(Schema.String)
})

/**
 * How a client authenticates at the token endpoint (RFC 7591 `token_endpoint_auth_method`).
 * Unset: `client_secret_post` when the provider has a secret, else `none`.
 */
export const TokenEndpointAuthMethod = Schema.Literal("client_secret_basic", "client_secret_post", "none")
export type TokenEndpointAuthMethod = typeof TokenEndpointAuthMethod.Type

export const RedirectConfig = Schema.Struct({
  /** Host written in the redirect URI (`localhost` for OpenAI's registration); `localhost` binds 127.0.0.1 and ::1, anything else 127.0.0.1. */
  host: Schema.String,
  path: Schema.String,
  /** Ports to try in order; `[0]` means any free port. */
  ports: Schema.Array(Schema.Int.pipe(Schema.between(0, 65535)))
})

export class ProviderConfig extends Schema.Class<ProviderConfig>("ProviderConfig")({
  id: ProviderId,
  kind: ProviderKind,
  displayName: Schema.String,
  issuer: Schema.optional(Schema.String),
  clientId: Schema.optional(Schema.String),
  clientSecret: Schema.optional(Secret),
  scopes: Schema.Array(Schema.String),
  /**
   * The API the access token is for, asked with `audience=` on the authorization and device
   * authorization requests (Auth0, and gateways that follow it). The ID token's `aud` is
   * still the client id.
   */
  audience: Schema.optional(Schema.String),
  /**
   * RFC 8707 resource indicator, sent on the authorization, token and refresh requests as
   * it is written here (MCP servers: the string the server's metadata publishes).
   */
  resource: Schema.optional(Schema.String),
  tokenEndpointAuthMethod: Schema.optional(TokenEndpointAuthMethod),
  /** An MCP server's URL, as given at login (kind `mcp`). */
  url: Schema.optional(Schema.String),
  /** Extra query parameters on the authorization request. */
  authorizeParams: Schema.Record({ key: Schema.String, value: Schema.String }),
  redirect: RedirectConfig,
  endpoints: Schema.optional(EndpointOverrides),
  /** How the refresh request body is sent: OAuth's form, or OpenAI's JSON. */
  refreshFormat: Schema.Literal("form", "json"),
  revokeFormat: Schema.Literal("form", "json"),
  /** Device flow variant: RFC 8628 (when the metadata has the endpoint), OpenAI's, or none. */
  device: Schema.Literal("rfc8628", "openai", "none"),
  /** Model API base URL for OAuth bearer calls. */
  apiBaseUrl: Schema.optional(Schema.String),
  /** Model API base URL for API-key calls. */
  apiKeyBaseUrl: Schema.optional(Schema.String),
  /** Environment variables holding an API key, in order. */
  apiKeyEnv: Schema.Array(Schema.String),
  /** Header that carries an API key: `authorization` (as `Bearer …`) or a named header such as `x-api-key`. */
  apiKeyHeader: Schema.String,
  mode: CredentialMode,
  /** Sent as the `originator` header and authorize parameter (OpenAI). */
  originator: Schema.optional(Schema.String)
}) {
  get canLogin(): boolean {
    return this.kind !== "api_key" && this.kind !== "google_adc" && this.mode !== "api_key_only"
  }
  get takesApiKey(): boolean {
    return this.mode !== "oauth_only"
  }
}

/** Our client name, sent where a provider asks who is calling. */
export const ORIGINATOR = "agent_auth"

export const openai = ProviderConfig.make({
  id: "openai",
  kind: "openai",
  displayName: "OpenAI",
  issuer: "https://auth.openai.com",
  clientId: "app_EMoamEEZ73f0CkXaXp7hrann",
  scopes: ["openid", "profile", "email", "offline_access"],
  authorizeParams: {
    id_token_add_organizations: "true",
    codex_cli_simplified_flow: "true",
    originator: ORIGINATOR
  },
  redirect: { host: "localhost", path: "/auth/callback", ports: [1455, 1457] },
  refreshFormat: "json",
  revokeFormat: "json",
  device: "openai",
  apiBaseUrl: "https://chatgpt.com/backend-api/codex",
  apiKeyBaseUrl: "https://api.openai.com/v1",
  apiKeyEnv: ["OPENAI_API_KEY"],
  apiKeyHeader: "authorization",
  mode: "auto",
  originator: ORIGINATOR
})

export const anthropic = ProviderConfig.make({
  id: "anthropic",
  kind: "api_key",
  displayName: "Anthropic",
  scopes: [],
  authorizeParams: {},
  redirect: { host: "127.0.0.1", path: "/callback", ports: [0] },
  refreshFormat: "form",
  revokeFormat: "form",
  device: "none",
  apiKeyBaseUrl: "https://api.anthropic.com",
  apiKeyEnv: ["ANTHROPIC_API_KEY"],
  apiKeyHeader: "x-api-key",
  mode: "api_key_only"
})

/**
 * Google's Gemini API with an API key (shared/PROVIDERS.md). Not Gemini CLI's OAuth login:
 * Google's terms forbid its tokens in other software, and accounts have been suspended for it.
 */
export const google = ProviderConfig.make({
  id: "google",
  kind: "api_key",
  displayName: "Google Gemini API",
  scopes: [],
  authorizeParams: {},
  redirect: { host: "127.0.0.1", path: "/callback", ports: [0] },
  refreshFormat: "form",
  revokeFormat: "form",
  device: "none",
  apiKeyBaseUrl: "https://generativelanguage.googleapis.com/v1beta",
  apiKeyEnv: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
  apiKeyHeader: "x-goog-api-key",
  mode: "api_key_only"
})

/**
 * Vertex AI with Application Default Credentials (`gcloud auth application-default login`,
 * or a service account key in GOOGLE_APPLICATION_CREDENTIALS). The base URL comes from
 * GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION unless `apiBaseUrl` is set (where
 * `{project}` and `{location}` are filled in); `endpoints.token` replaces Google's token
 * endpoint (and a service account's `token_uri`).
 */
export const vertex = ProviderConfig.make({
  id: "vertex",
  kind: "google_adc",
  displayName: "Google Vertex AI",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  authorizeParams: {},
  redirect: { host: "127.0.0.1", path: "/callback", ports: [0] },
  refreshFormat: "form",
  revokeFormat: "form",
  device: "none",
  apiKeyEnv: [],
  apiKeyHeader: "authorization",
  mode: "oauth_only"
})

/** Defaults for a provider added in config.json with `kind: "oidc"`. */
export const oidcDefaults = {
  kind: "oidc",
  scopes: ["openid", "offline_access"],
  authorizeParams: {},
  redirect: { host: "127.0.0.1", path: "/callback", ports: [0] },
  refreshFormat: "form",
  revokeFormat: "form",
  device: "rfc8628",
  apiKeyEnv: [],
  apiKeyHeader: "authorization",
  mode: "auto"
} as const

export const builtins: ReadonlyArray<ProviderConfig> = [openai, anthropic, google, vertex]

/** The endpoints of an authorization server, from discovery or derived from the provider. */
export class AuthServerMetadata extends Schema.Class<AuthServerMetadata>("AuthServerMetadata")({
  issuer: Schema.String,
  authorization_endpoint: Schema.String,
  token_endpoint: Schema.String,
  revocation_endpoint: Schema.optional(Schema.String),
  jwks_uri: Schema.optional(Schema.String),
  device_authorization_endpoint: Schema.optional(Schema.String),
  id_token_signing_alg_values_supported: Schema.optional(Schema.Array(Schema.String)),
  code_challenge_methods_supported: Schema.optional(Schema.Array(Schema.String)),
  authorization_response_iss_parameter_supported: Schema.optional(Schema.Boolean),
  registration_endpoint: Schema.optional(Schema.String),
  scopes_supported: Schema.optional(Schema.Array(Schema.String)),
  token_endpoint_auth_methods_supported: Schema.optional(Schema.Array(Schema.String)),
  client_id_metadata_document_supported: Schema.optional(Schema.Boolean)
}) {}

/** True for http URLs on a loopback host, the only place plain http is accepted. */
export const isLoopbackUrl = (url: URL): boolean =>
  url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]" ||
  /^127\.\d+\.\d+\.\d+$/.test(url.hostname)

/**
 * Provider text (an error description, a display name, a device message) made safe for a
 * terminal: escape sequences and control characters removed, at most `max` characters.
 */
export { sanitize } from "./internal/text.js"

/**
 * The command that signs in to `provider`, where it is not `agent-auth login <id>`: an MCP
 * server's `agent-auth mcp login <url>`. Errors carry it as their `command`.
 */
export const loginCommand = (provider: ProviderConfig): string | undefined =>
  provider.kind === "mcp" && provider.url !== undefined ? `agent-auth mcp login ${provider.url}` : undefined
