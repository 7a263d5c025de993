/**
 * Which OAuth client signs in to an MCP server, in the spec's order: a pre-registered
 * client (`--client-id`, config.json), else a Client ID Metadata Document when one is
 * configured and the authorization server supports them, else RFC 7591 dynamic
 * registration with `application_type: "native"` — kept per issuer and reused, never
 * one per login. A registration is made again only when the issuer rejects it (RFC 7592
 * read answers 401/403/404, or a token request says `invalid_client`).
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { AuthConfig, Domain, HttpRules, McpDiscoveryError, Provider, type StoreError, type StoreLocked, type StorePermissions } from "@agent-auth/core"
import type { ConfigInvalid } from "@agent-auth/core"
import { Clock, DateTime, Effect, Redacted, Schema } from "effect"
import { unreadable } from "./internal/http.js"
import { configured, configuredByUrl, McpServers, type Registration, type ServerRecord } from "./McpServers.js"

/** The client a login uses. */
export interface Client {
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly tokenEndpointAuthMethod: Provider.TokenEndpointAuthMethod
  readonly kind: ServerRecord["client"]
}

/** Loopback with no port (RFC 8252 §7.3): one registration serves every login's port. */
export const REDIRECT_URI = "http://127.0.0.1/callback"

/**
 * What we ask a server to register (RFC 7591 §2): a public native client using PKCE. No
 * `scope`: a server may limit the client to the scopes it registered with, and one
 * registration serves every later login and step-up at the issuer, whatever they ask for.
 */
export const registrationRequest = {
  client_name: "agent-auth",
  application_type: "native",
  redirect_uris: [REDIRECT_URI],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none"
} as const

const RegistrationResponse = Schema.Struct({
  client_id: Schema.String,
  client_secret: Schema.optional(Domain.Secret),
  token_endpoint_auth_method: Schema.optional(Schema.String),
  registration_access_token: Schema.optional(Domain.Secret),
  registration_client_uri: Schema.optional(Schema.String)
})

const methods: ReadonlyArray<Provider.TokenEndpointAuthMethod> = ["client_secret_basic", "client_secret_post", "none"]

/**
 * The method a registration answer names; RFC 7591 §2's default (`client_secret_basic`) when
 * it names none and gave a secret. One we cannot perform is refused.
 */
export const answeredMethod = (
  named: string | undefined,
  hasSecret: boolean
): Provider.TokenEndpointAuthMethod | undefined => {
  const m = named ?? (hasSecret ? "client_secret_basic" : "none")
  return (methods as ReadonlyArray<string>).includes(m) ? (m as Provider.TokenEndpointAuthMethod) : undefined
}

/**
 * A pre-registered client's method: none without a secret; with one, `client_secret_basic`
 * unless the server offers only `client_secret_post`.
 */
export const configuredMethod = (
  hasSecret: boolean,
  metadata: Provider.AuthServerMetadata
): Provider.TokenEndpointAuthMethod => {
  if (!hasSecret) return "none"
  const offered = metadata.token_endpoint_auth_methods_supported
  return offered !== undefined && offered.includes("client_secret_post") && !offered.includes("client_secret_basic")
    ? "client_secret_post"
    : "client_secret_basic"
}

/** RFC 7591 registration at `metadata.registration_endpoint`; the answer is stored for the issuer. */
export const register = (
  serverUrl: string,
  metadata: Provider.AuthServerMetadata
): Effect.Effect<Registration, McpDiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const fail = (reason: string) => new McpDiscoveryError({ server: serverUrl, reason })
    const endpoint = metadata.registration_endpoint
    if (endpoint === undefined) {
      return yield* fail(
        `its authorization server ${metadata.issuer} offers no dynamic client registration (no registration_endpoint); pre-register a client and pass --client-id (or set clientId in config.json)`
      )
    }
    const client = yield* HttpClient.HttpClient
    const started = yield* Clock.currentTimeMillis
    const response = yield* client.execute(
      HttpClientRequest.post(endpoint).pipe(HttpClientRequest.acceptJson, HttpClientRequest.bodyUnsafeJson(registrationRequest))
    ).pipe(
      HttpRules.withoutRedirects,
      Effect.mapError(() => fail(`the registration endpoint ${endpoint} could not be reached`))
    )
    const text = yield* HttpRules.readBounded(response).pipe(
      Effect.map((bytes) => new TextDecoder().decode(bytes)),
      Effect.mapError((e) => fail(`registration at ${endpoint}: ${unreadable(e)}`))
    )
    yield* Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.logDebug(`POST ${endpoint}`).pipe(
        Effect.annotateLogs({ step: "dynamic client registration (RFC 7591)", status: response.status, duration_ms: now - started })
      ))
    const json = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => fail(`registration at ${endpoint} answered HTTP ${response.status} without JSON`) })
    if (response.status !== 201 && response.status !== 200) {
      const error = typeof json === "object" && json !== null && typeof (json as { error?: unknown }).error === "string"
        ? (json as { error: string }).error.slice(0, 100)
        : `HTTP ${response.status}`
      return yield* fail(`its authorization server refused to register a client (${error})`)
    }
    const answer = yield* Schema.decodeUnknown(RegistrationResponse)(json).pipe(
      Effect.mapError(() => fail(`the registration answer of ${endpoint} has no client_id`))
    )
    const method = answeredMethod(answer.token_endpoint_auth_method, answer.client_secret !== undefined)
    if (method === undefined) {
      return yield* fail(`the registered client authenticates with ${answer.token_endpoint_auth_method}, which agent-auth does not support`)
    }
    const now = yield* DateTime.now
    return {
      clientId: answer.client_id,
      ...(answer.client_secret === undefined ? {} : { clientSecret: answer.client_secret }),
      tokenEndpointAuthMethod: method,
      redirectUris: [REDIRECT_URI],
      registeredAt: DateTime.formatIso(now),
      ...(answer.registration_access_token === undefined ? {} : { registrationAccessToken: answer.registration_access_token }),
      ...(answer.registration_client_uri === undefined ? {} : { registrationClientUri: answer.registration_client_uri })
    }
  })

/**
 * Whether the issuer still knows a stored registration (RFC 7592 read, when the registration
 * answer gave its URI and token). Only a clear rejection (401, 403, 404) says no; a network
 * fault or any other answer keeps the registration, so a passing fault never re-registers.
 */
export const stillRegistered = (registration: Registration): Effect.Effect<boolean, never, HttpClient.HttpClient> => {
  const uri = registration.registrationClientUri
  const token = registration.registrationAccessToken
  if (uri === undefined || token === undefined) return Effect.succeed(true)
  return Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(
      HttpClientRequest.get(uri).pipe(HttpClientRequest.acceptJson, HttpClientRequest.bearerToken(Redacted.value(token)))
    ).pipe(HttpRules.withoutRedirects)
    const rejected = response.status === 401 || response.status === 403 || response.status === 404
    yield* Effect.logDebug("registration checked (RFC 7592 read)").pipe(
      Effect.annotateLogs({ client_id: registration.clientId, status: response.status, rejected })
    )
    return !rejected
  }).pipe(Effect.scoped, Effect.orElseSucceed(() => true))
}

/** Forgets the issuer's registration when it is still `clientId` (the issuer rejected it). */
export const forget = (
  issuer: string,
  clientId: string
): Effect.Effect<void, ConfigInvalid | StoreError | StoreLocked | StorePermissions, McpServers> =>
  Effect.flatMap(McpServers, (store) =>
    store.update((file) => {
      if (file.registrations[issuer]?.clientId !== clientId) return file
      const { [issuer]: _, ...rest } = file.registrations
      return { ...file, registrations: rest }
    })).pipe(
      Effect.zipLeft(Effect.logDebug("registration forgotten: the issuer rejected it").pipe(Effect.annotateLogs({ issuer, client_id: clientId })))
    )

export interface ChooseOptions {
  readonly serverUrl: string
  readonly name: string
  readonly metadata: Provider.AuthServerMetadata
  readonly scopes: ReadonlyArray<string>
  /** `--client-id`. */
  readonly clientId?: string | undefined
}

/** The client for this login, registering one only when the issuer has none of ours. */
export const choose = (
  options: ChooseOptions
): Effect.Effect<Client, McpDiscoveryError | ConfigInvalid | StoreError | StoreLocked | StorePermissions, McpServers | AuthConfig.AuthConfig | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const config = yield* AuthConfig.AuthConfig
    const store = yield* McpServers
    const { metadata } = options
    const issuer = metadata.issuer
    const entry = configured(config, options.name) ?? configuredByUrl(config, options.serverUrl)?.entry
    // 1. Pre-registered: --client-id, or config.json's clientId; config.json's secret goes with its own id only.
    const clientId = options.clientId ?? entry?.clientId
    if (clientId !== undefined) {
      const secret = entry?.clientId === clientId ? entry.clientSecret : undefined
      yield* trace("pre-registered client", issuer, clientId)
      return { clientId, clientSecret: secret, tokenEndpointAuthMethod: configuredMethod(secret !== undefined, metadata), kind: "configured" }
    }
    // 2. A Client ID Metadata Document: its URL is the client_id; the authorization server fetches it, we never do.
    if (entry?.clientMetadataUrl !== undefined && metadata.client_id_metadata_document_supported === true) {
      yield* trace("client ID metadata document", issuer, entry.clientMetadataUrl)
      return { clientId: entry.clientMetadataUrl, tokenEndpointAuthMethod: "none", kind: "metadata_document" }
    }
    // 3. Ours at this issuer already, unless the issuer no longer knows it.
    const stored = (yield* store.read).registrations[issuer]
    if (stored !== undefined) {
      if (yield* stillRegistered(stored)) {
        yield* trace("registered client reused", issuer, stored.clientId)
        return fromRegistration(stored)
      }
      yield* forget(issuer, stored.clientId)
    }
    // 4. Register, and keep it for every later login at this issuer.
    const registration = yield* register(options.serverUrl, metadata)
    yield* store.update((file) => ({ ...file, registrations: { ...file.registrations, [issuer]: registration } }))
    yield* trace("client registered (RFC 7591)", issuer, registration.clientId)
    return fromRegistration(registration)
  })

const fromRegistration = (r: Registration): Client => ({
  clientId: r.clientId,
  clientSecret: r.clientSecret,
  tokenEndpointAuthMethod: r.tokenEndpointAuthMethod,
  kind: "dynamic"
})

const trace = (rule: string, issuer: string, clientId: string) =>
  Effect.logDebug("client chosen").pipe(Effect.annotateLogs({ rule, issuer, client_id: clientId }))

