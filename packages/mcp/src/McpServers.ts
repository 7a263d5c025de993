/**
 * The MCP servers signed in to, and the clients registered at their authorization servers:
 * `$AGENT_AUTH_HOME/mcp.json` (`layerFile`), or memory (`layerMemory`).
 *
 * Why a file of its own and not the TokenStore: a registration is not a login. It is keyed
 * by issuer, not by provider and account; it outlives `logout` (so the next login reuses it
 * instead of registering again); and credentials.json is a contract other tools read, whose
 * entries (and the keyring and SQL stores behind the same interface) hold logins only. The
 * tokens of an MCP login are in the TokenStore like any other login, under the server's name.
 * A dynamically registered client rarely has a secret (we ask for `none`); when the server
 * issues one anyway it is kept here, in a 0600 file written atomically under a cross-process
 * lock (`mcp.json.lock`), like credentials.json.
 *
 * This service is also the registry's `ProviderSource`: each server is a provider of kind
 * `mcp`, found by its name or by its URL, whose client is the one its login used.
 */
import { FileSystem } from "@effect/platform"
import { AuthConfig, ConfigInvalid, Domain, Provider, ProviderRegistry, type StoreError, type StoreLocked, type StorePermissions } from "@agent-auth/core"
import { NodeFiles } from "@agent-auth/node"
import { Context, Duration, Effect, Layer, Option, type Redacted, Ref, Schema } from "effect"
import * as AuthorizationServer from "./AuthorizationServer.js"
import { canonicalUri } from "./ProtectedResource.js"

/** One MCP server as its last login left it. */
export const ServerRecord = Schema.Struct({
  /** The URL exactly as given at login (`token <url>` matches it). */
  url: Schema.String,
  /** The issuer its tokens come from: they are never sent to another. */
  issuer: Schema.String,
  /** The `resource` sent on every authorization, token and refresh request. */
  resource: Schema.String,
  /** Where its protected-resource metadata was found. */
  resourceMetadata: Schema.optional(Schema.String),
  /** Scopes asked for at the last login (the union, after a step-up). */
  scopes: Schema.Array(Schema.String),
  /** The client the login used, and how it authenticates at the token endpoint. */
  clientId: Schema.String,
  tokenEndpointAuthMethod: Provider.TokenEndpointAuthMethod,
  /** How the client came to be: configured (config.json or --client-id), a metadata document URL, or registered. */
  client: Schema.Literal("configured", "metadata_document", "dynamic")
})
export type ServerRecord = typeof ServerRecord.Type

/** A client registered dynamically (RFC 7591) at one issuer, reused for every server on it. */
export const Registration = Schema.Struct({
  clientId: Schema.String,
  clientSecret: Schema.optional(Domain.Secret),
  tokenEndpointAuthMethod: Provider.TokenEndpointAuthMethod,
  redirectUris: Schema.Array(Schema.String),
  registeredAt: Schema.String,
  /** RFC 7592: where and with what the registration can be read back (to see that the issuer still knows it). */
  registrationClientUri: Schema.optional(Schema.String),
  registrationAccessToken: Schema.optional(Domain.Secret)
})
export type Registration = typeof Registration.Type

export const McpFile = Schema.Struct({
  version: Schema.Literal(1),
  servers: Schema.Record({ key: Domain.ProviderId, value: ServerRecord }),
  /** By issuer. */
  registrations: Schema.Record({ key: Schema.String, value: Registration })
})
export type McpFile = typeof McpFile.Type

export const empty: McpFile = { version: 1, servers: {}, registrations: {} }

export interface McpServersShape {
  /** Where it lives, for people. */
  readonly location: string
  readonly read: Effect.Effect<McpFile, ConfigInvalid>
  /** Read, change, write, as one step no other process interleaves with; `f` returning its argument writes nothing. */
  readonly update: (f: (file: McpFile) => McpFile) => Effect.Effect<McpFile, ConfigInvalid | StoreError | StoreLocked | StorePermissions>
}

export class McpServers extends Context.Tag("@agent-auth/mcp/McpServers")<McpServers, McpServersShape>() {}

/** The name a server is stored under by default: its host (and port), in provider-id characters. */
export const defaultName = (url: string): string =>
  new URL(url).host.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64) || "mcp"

/** The server `nameOrUrl` names: by name, else by the URL as given, else by canonical URL. */
export const find = (file: McpFile, nameOrUrl: string): [string, ServerRecord] | undefined => {
  const byName = file.servers[nameOrUrl]
  if (byName !== undefined) return [nameOrUrl, byName]
  const entries = Object.entries(file.servers)
  const exact = entries.find(([, s]) => s.url === nameOrUrl)
  if (exact !== undefined) return exact
  let canonical: string
  try {
    canonical = canonicalUri(nameOrUrl)
  } catch {
    return undefined
  }
  return entries.find(([, s]) => {
    try {
      return canonicalUri(s.url) === canonical
    } catch {
      return false
    }
  })
}

/** config.json's entry for an MCP server (kind `mcp`): a pre-registered client, a metadata document URL. */
export const configured = (config: AuthConfig.AuthConfigShape, name: string) => {
  const o = config.file.providers?.[name]
  return o !== undefined && o.kind === "mcp" ? o : undefined
}

/** config.json's MCP entry whose `url` is this one (the same server under the name chosen there). */
export const configuredByUrl = (config: AuthConfig.AuthConfigShape, url: string) => {
  for (const [name, o] of Object.entries(config.file.providers ?? {})) {
    if (o.kind === "mcp" && o.url !== undefined && (o.url === url || safeCanonical(o.url) === safeCanonical(url))) {
      return { name, entry: o }
    }
  }
  return undefined
}

const safeCanonical = (url: string): string | undefined => {
  try {
    return canonicalUri(url)
  } catch {
    return undefined
  }
}

/** A provider of kind `mcp`: every field the core flows read, for this server and its client. */
export const provider = (fields: {
  readonly id: string
  readonly url: string
  readonly issuer?: string | undefined
  readonly resource?: string | undefined
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly clientId?: string | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  readonly tokenEndpointAuthMethod?: Provider.TokenEndpointAuthMethod | undefined
}): Provider.ProviderConfig =>
  Provider.ProviderConfig.make({
    id: fields.id,
    kind: "mcp",
    displayName: fields.url,
    url: fields.url,
    ...(fields.issuer === undefined ? {} : { issuer: fields.issuer }),
    ...(fields.resource === undefined ? {} : { resource: fields.resource }),
    ...(fields.clientId === undefined ? {} : { clientId: fields.clientId }),
    ...(fields.clientSecret === undefined ? {} : { clientSecret: fields.clientSecret }),
    ...(fields.tokenEndpointAuthMethod === undefined ? {} : { tokenEndpointAuthMethod: fields.tokenEndpointAuthMethod }),
    scopes: fields.scopes ?? [],
    authorizeParams: {},
    // Loopback, any port (RFC 8252 §7.3): the registration names no port.
    redirect: { host: "127.0.0.1", path: "/callback", ports: [0] },
    refreshFormat: "form",
    revokeFormat: "form",
    device: "none",
    // The token is for this server: where a resolved credential's requests go.
    apiBaseUrl: fields.url,
    apiKeyEnv: [],
    apiKeyHeader: "authorization",
    mode: "oauth_only"
  })

/** The secret of the client a server's login used: config.json's when it is that client, else its registration's. */
const secretOf = (config: AuthConfig.AuthConfigShape, file: McpFile, name: string, record: ServerRecord) => {
  const entry = configured(config, name) ?? configuredByUrl(config, record.url)?.entry
  if (record.client === "configured") return entry?.clientId === record.clientId ? entry.clientSecret : undefined
  const registration = file.registrations[record.issuer]
  return registration !== undefined && registration.clientId === record.clientId ? registration.clientSecret : undefined
}

/** The provider for a stored server. */
export const serverProvider = (config: AuthConfig.AuthConfigShape, file: McpFile, name: string, record: ServerRecord) =>
  provider({
    id: name,
    url: record.url,
    issuer: record.issuer,
    resource: record.resource,
    scopes: record.scopes,
    clientId: record.clientId,
    clientSecret: secretOf(config, file, name, record),
    tokenEndpointAuthMethod: record.tokenEndpointAuthMethod
  })

/** The `ProviderSource` over a store: stored servers, then config.json's MCP entries not signed in to yet. */
export const source = (store: McpServersShape, config: AuthConfig.AuthConfigShape): ProviderRegistry.ProviderSourceShape => {
  const unsigned = (file: McpFile) =>
    Object.entries(config.file.providers ?? {}).flatMap(([name, o]) =>
      o.kind === "mcp" && o.url !== undefined && file.servers[name] === undefined ? [provider({ id: name, url: o.url })] : []
    )
  return {
    kind: "mcp",
    profile: AuthorizationServer.profile,
    get: (id) =>
      Effect.map(store.read, (file) => {
        const hit = find(file, id)
        if (hit !== undefined) return Option.some(serverProvider(config, file, hit[0], hit[1]))
        return Option.fromNullable(unsigned(file).find((p) => p.id === id || p.url === id))
      }),
    list: Effect.map(store.read, (file) => [
      ...Object.entries(file.servers).map(([name, record]) => serverProvider(config, file, name, record)),
      ...unsigned(file)
    ])
  }
}

const decode = (path: string) => (text: string): Effect.Effect<McpFile, ConfigInvalid> =>
  Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => new ConfigInvalid({ source: path, field: "(root)", reason: "not JSON" }) }).pipe(
    Effect.flatMap((json) =>
      Schema.decodeUnknown(McpFile)(json).pipe(
        Effect.mapError((e) => new ConfigInvalid({ source: path, field: "(root)", reason: e.message.split("\n")[0] ?? "invalid" }))
      )
    )
  )

/** mcp.json in `AGENT_AUTH_HOME`, 0600, written whole (temp file, fsync, rename). */
export const makeFile = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const config = yield* AuthConfig.AuthConfig
  const path = `${config.home}/mcp.json`
  const read = fs.readFileString(path).pipe(
    Effect.flatMap(decode(path)),
    Effect.catchTags({
      SystemError: (e) =>
        e.reason === "NotFound" ? Effect.succeed(empty) : Effect.fail(new ConfigInvalid({ source: path, field: "(file)", reason: e.message })),
      BadArgument: (e) => Effect.fail(new ConfigInvalid({ source: path, field: "(file)", reason: e.message }))
    })
  )
  const write = (file: McpFile) =>
    Effect.flatMap(Schema.encode(McpFile)(file).pipe(Effect.orDie), (encoded) =>
      NodeFiles.writeText(path, `${JSON.stringify(encoded, null, 2)}\n`)).pipe(Effect.provideService(FileSystem.FileSystem, fs))
  // Several processes log in, register and restore at once: each read-modify-write holds
  // credentials.json's kind of lock (`mcp.json.lock`), so none writes over another's change.
  const lock = yield* NodeFiles.makeLock({ path, timeout: config.lockTimeout, staleAfter: Duration.seconds(30) })
  const locked = <A, E>(effect: Effect.Effect<A, E>) =>
    // The lock file lives beside mcp.json: the folder first.
    Effect.zipRight(NodeFiles.ensurePrivateDir(fs, config.home, path), lock.withLock(effect))
  return McpServers.of({
    location: path,
    read,
    update: (f) =>
      locked(Effect.flatMap(read, (file) => {
        const next = f(file)
        return next === file ? Effect.succeed(file) : Effect.as(write(next), next)
      }))
  })
})

export const makeMemory = (initial: McpFile = empty) =>
  Effect.map(Ref.make(initial), (ref) =>
    McpServers.of({
      location: "memory",
      read: Ref.get(ref),
      update: (f) => Ref.updateAndGet(ref, f)
    }))

/** The store and the registry's `ProviderSource` over it, as one layer. */
const withSource = <E, R>(make: Effect.Effect<McpServersShape, E, R>) =>
  Layer.effectContext(
    Effect.gen(function*() {
      const store = yield* make
      const config = yield* AuthConfig.AuthConfig
      return Context.make(McpServers, store).pipe(Context.add(ProviderRegistry.ProviderSource, source(store, config)))
    })
  )

export const layerFile: Layer.Layer<McpServers | ProviderRegistry.ProviderSource, never, FileSystem.FileSystem | AuthConfig.AuthConfig> =
  withSource(makeFile)

export const layerMemory = (
  initial?: McpFile
): Layer.Layer<McpServers | ProviderRegistry.ProviderSource, never, AuthConfig.AuthConfig> => withSource(makeMemory(initial))
