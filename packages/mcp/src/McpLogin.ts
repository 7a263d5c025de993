/**
 * Signing in to an MCP server: probe it (an unauthenticated MCP `initialize`, to read its
 * challenge), discover its protected-resource metadata and authorization server, choose
 * the client, then core's browser login (`PkceFlow.login`: PKCE S256, state, RFC 9207
 * `iss`, the loopback callback) with `resource` on every request. The login is stored in
 * the TokenStore as provider `name` (kind `mcp`), the server in `McpServers`.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import {
  type AuthError,
  AuthorizationDenied,
  type BrowserLauncher,
  type CallbackServer,
  ConfigInvalid,
  type Domain,
  HttpRules,
  LoginTimeout,
  McpDiscoveryError,
  PkceFlow,
  ProviderRegistry,
  StateMismatch,
  AuthConfig
} from "@agent-auth/core"
import { Effect, Option, Schema } from "effect"
import * as AuthorizationServer from "./AuthorizationServer.js"
import * as ClientRegistration from "./ClientRegistration.js"
import { configuredByUrl, defaultName, find, McpServers, provider, type ServerRecord } from "./McpServers.js"
import * as ProtectedResource from "./ProtectedResource.js"

export interface McpLoginOptions {
  /** The server's URL; stored as given (`token <url>` matches it). */
  readonly url: string
  /** The provider name to store the login under (default: the name it has, else config.json's, else the URL's host). */
  readonly name?: string | undefined
  /** Scopes to ask for; they win over the challenge's and the metadata's. */
  readonly scopes?: ReadonlyArray<string> | undefined
  /** A pre-registered client (`--client-id`). */
  readonly clientId?: string | undefined
}

/** The MCP `initialize` request a probe sends. */
export const initializeRequest = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "agent-auth", version: "0.1.0" } }
}

/**
 * The server's challenge to an unauthenticated `initialize` POST: its `WWW-Authenticate`
 * when it answers 401, else None (a server that lets `initialize` through is discovered
 * through the well-known URIs).
 */
export const probe = (url: string): Effect.Effect<Option.Option<ProtectedResource.Challenge>, McpDiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(
      HttpClientRequest.post(url).pipe(
        HttpClientRequest.setHeader("accept", "application/json, text/event-stream"),
        HttpClientRequest.bodyUnsafeJson(initializeRequest)
      )
    ).pipe(
      HttpRules.withoutRedirects,
      Effect.mapError(() => new McpDiscoveryError({ server: url, reason: "it could not be reached" }))
    )
    const challenge = response.status === 401 ? ProtectedResource.parseChallenge(response.headers["www-authenticate"]) : undefined
    yield* Effect.logDebug("probe").pipe(
      Effect.annotateLogs({
        server: url,
        step: "unauthenticated initialize",
        status: response.status,
        challenge: challenge === undefined ? "none" : "Bearer",
        ...(challenge?.scopes === undefined ? {} : { scope: challenge.scopes.join(" ") })
      })
    )
    return Option.fromNullable(challenge)
  }).pipe(Effect.scoped)

/** Scopes for the login: explicit ones, else the challenge's, else the metadata's `scopes_supported`, else none. */
export const scopesFor = (
  explicit: ReadonlyArray<string> | undefined,
  challenge: ProtectedResource.Challenge | undefined,
  metadata: ProtectedResource.ProtectedResourceMetadata
): ReadonlyArray<string> =>
  explicit !== undefined && explicit.length > 0
    ? explicit
    : challenge?.scopes ?? metadata.scopes_supported ?? []

/** The union of two scope lists, in first-seen order (step-up asks for what it held and what was challenged). */
export const unionScopes = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): ReadonlyArray<string> => [...new Set([...a, ...b])]

const validName = Schema.is(Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,63}$/)))

/** The name a login is stored under. */
const nameFor = (options: McpLoginOptions) =>
  Effect.gen(function*() {
    const config = yield* AuthConfig.AuthConfig
    const store = yield* McpServers
    const name = options.name ?? find(yield* store.read, options.url)?.[0] ?? configuredByUrl(config, options.url)?.name ??
      defaultName(options.url)
    if (!validName(name)) {
      return yield* new ConfigInvalid({ source: "command line", field: "--name", reason: `"${name}" is not a name: use a-z, 0-9, - and _` })
    }
    return name
  })

/** The URL must be https (or http on loopback) before anything is sent to it. */
const checkServerUrl = (url: string) => {
  const problem = AuthConfig.urlProblem(url)
  return problem === undefined
    ? Effect.void
    : Effect.fail(new ConfigInvalid({ source: "command line", field: "url", reason: problem }))
}

/** Everything before the browser: discovery, the client, the server's record (saved). */
export const prepare = (options: McpLoginOptions) =>
  Effect.gen(function*() {
    yield* checkServerUrl(options.url)
    const registry = yield* ProviderRegistry.ProviderRegistry
    const store = yield* McpServers
    const name = yield* nameFor(options)
    const challenge = Option.getOrUndefined(yield* probe(options.url))
    const found = yield* ProtectedResource.discover(options.url, challenge)
    const issuer = yield* AuthorizationServer.checkIssuer(found.issuer, options.url)
    // Through the registry: discovered once per issuer and process, with the MCP rules.
    const metadata = yield* registry.metadata(provider({ id: name, url: options.url, issuer })).pipe(
      Effect.mapError(AuthorizationServer.asServerError(options.url))
    )
    // Fail closed even over a registry built without the MCP profile.
    const problem = AuthorizationServer.profile.check(metadata)
    if (problem !== undefined) return yield* new McpDiscoveryError({ server: options.url, reason: `its authorization server: ${problem}` })
    const scopes = scopesFor(options.scopes, challenge, found.metadata)
    const client = yield* ClientRegistration.choose({ serverUrl: options.url, name, metadata, scopes, clientId: options.clientId })
    const record: ServerRecord = {
      url: options.url,
      issuer: metadata.issuer,
      resource: found.resource,
      resourceMetadata: found.metadataUrl,
      scopes,
      clientId: client.clientId,
      tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
      client: client.kind
    }
    // The record it replaces, read under the same lock as the write (a failed login puts it back).
    let previous: ServerRecord | undefined
    yield* store.update((file) => {
      previous = file.servers[name]
      return { ...file, servers: { ...file.servers, [name]: record } }
    })
    return { name, record, previous: previous as ServerRecord | undefined, client }
  })

/** The command that runs this login again: `agent-auth mcp login <url>`, with its `--name` and `--scope`s when it had some. */
export const loginCommand = (options: McpLoginOptions): string =>
  `agent-auth mcp login ${options.url}${options.name === undefined ? "" : ` --name ${options.name}`}${
    (options.scopes ?? []).map((s) => ` --scope ${s}`).join("")
  }`

/**
 * The browser flow's failures name `agent-auth login <provider>`, which does not sign in to
 * an MCP server: they name this login's own command instead.
 */
const namingCommand = (command: string) => (e: AuthError): AuthError => {
  switch (e._tag) {
    case "LoginTimeout":
      return new LoginTimeout({ provider: e.provider, seconds: e.seconds, command })
    case "StateMismatch":
      return new StateMismatch({ provider: e.provider, command })
    case "AuthorizationDenied":
      return new AuthorizationDenied({
        provider: e.provider,
        error: e.error,
        ...(e.description === undefined ? {} : { description: e.description }),
        command
      })
    default:
      return e
  }
}

/**
 * The whole browser login. A failure puts the server's previous record back (its stored
 * tokens belong to that one's client); an `invalid_client` from the token endpoint forgets a
 * dynamic registration, so the next login registers anew.
 */
export const login = (
  options: McpLoginOptions,
  loginOptions: PkceFlow.LoginOptions = {}
): Effect.Effect<
  { readonly name: string; readonly record: ServerRecord; readonly credential: Domain.OAuthCredential },
  AuthError,
  | McpServers
  | AuthConfig.AuthConfig
  | HttpClient.HttpClient
  | ProviderRegistry.ProviderRegistry
  | PkceFlow.PkceFlow
  | CallbackServer.CallbackServer
  | BrowserLauncher.BrowserLauncher
> =>
  Effect.gen(function*() {
    const flow = yield* PkceFlow.PkceFlow
    const store = yield* McpServers
    const { client, name, previous, record } = yield* prepare(options)
    const credential = yield* flow.login(name, loginOptions).pipe(
      Effect.tapError((e) =>
        Effect.zipRight(
          store.update((file) => {
            const { [name]: _, ...rest } = file.servers
            return { ...file, servers: previous === undefined ? rest : { ...rest, [name]: previous } }
          }),
          e._tag === "TokenEndpointError" && e.error === "invalid_client" && client.kind === "dynamic"
            ? ClientRegistration.forget(record.issuer, client.clientId)
            : Effect.void
        ).pipe(Effect.ignore)
      ),
      Effect.mapError(namingCommand(loginCommand(options)))
    )
    return { name, record, credential }
  })
