/**
 * The real components of the MCP tests, in-process on 127.0.0.1:
 *
 * - `startMcpIssuer`: panva's oidc-provider as an MCP authorization server: dynamic
 *   registration (RFC 7591, read back per RFC 7592), resource indicators (RFC 8707; the
 *   token's audience is the resource asked for, tokens are JWTs), Client ID Metadata
 *   Documents (its fetch reaches the test's documents, not the network), three
 *   pre-registered clients (client_secret_basic, client_secret_post, none), refresh tokens
 *   on every code grant. Optionally mounted under a path (`/tenant-a`): its metadata is then
 *   at `/tenant-a/.well-known/openid-configuration` only, the third URL of the MCP order.
 *   It counts what the tests assert at the server: registrations, and the `resource` of
 *   every authorization and token request.
 * - `startMcpServer`: an MCP server built with @modelcontextprotocol/sdk (McpServer +
 *   StreamableHTTPServerTransport, stateless) that serves its protected-resource metadata,
 *   answers 401 with `WWW-Authenticate: Bearer resource_metadata=…, scope=…`, verifies the
 *   JWT with jose against the issuer's JWKS, its `iss` and `aud`, and has a tool (`admin`)
 *   that needs a scope (`mcp:admin`) the first login lacks: 403 `insufficient_scope`.
 *   It records every Authorization header it receives.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from "jose"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import Provider from "oidc-provider"
import { z } from "zod"

export const SCOPES = ["mcp:read", "mcp:write", "mcp:admin"] as const
export const CIMD_URL = "https://client.example.test/agent-auth.json"
export const PRE_REGISTERED = {
  basic: { client_id: "mcp-basic", client_secret: "basic-secret-for-tests-only-0123456789", token_endpoint_auth_method: "client_secret_basic" },
  post: { client_id: "mcp-post", client_secret: "post-secret-for-tests-only-0123456789", token_endpoint_auth_method: "client_secret_post" },
  none: { client_id: "mcp-none", token_endpoint_auth_method: "none" }
} as const

export interface Seen {
  readonly route: "authorization" | "token"
  readonly grantType?: string | undefined
  readonly clientId?: string | undefined
  readonly resource: unknown
  readonly scope?: unknown
}

export interface McpIssuer {
  readonly issuer: string
  readonly registrations: () => number
  readonly seen: ReadonlyArray<Seen>
  readonly grants: (grantType: string) => number
  /** The issuer forgets a registered client, as a server that expires registrations does. */
  readonly forgetClient: (clientId: string) => Promise<void>
  /** Tokens this issuer's access tokens live, in seconds (set before a login). */
  accessTokenTtl: number
  readonly close: () => Promise<void>
}

const listen = async (server: http.Server): Promise<string> => {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const closer = (server: http.Server) => () =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

const nativeClient = (c: { client_id: string; client_secret?: string; token_endpoint_auth_method: string }) => ({
  ...c,
  application_type: "native",
  redirect_uris: ["http://127.0.0.1/callback"],
  response_types: ["code"],
  grant_types: ["authorization_code", "refresh_token"]
})

/** Starts the authorization server; `path` mounts it below the origin (`/tenant-a`). */
export const startMcpIssuer = async (
  options: {
    readonly path?: string
    readonly resources?: () => ReadonlyArray<string>
    /** Client authentication methods the server offers (default: oidc-provider's). */
    readonly authMethods?: ReadonlyArray<string>
  } = {}
) => {
  const mount = options.path ?? ""
  const { privateKey } = await generateKeyPair("RS256", { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: "mcp-test-key", alg: "RS256", use: "sig" }
  const seen: Array<Seen> = []
  const grants = new Map<string, number>()
  let registrations = 0
  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/"
    if (handler === undefined || !(url === mount || url.startsWith(`${mount}/`) || mount === "")) {
      res.statusCode = 404
      res.end()
      return
    }
    // Mounted as an express app would be: the provider sees the path below its mount.
    ;(req as { originalUrl?: string }).originalUrl = url
    req.url = url.slice(mount.length) || "/"
    handler(req, res)
  })
  const origin = await listen(server)
  const issuer = `${origin}${mount}`
  const state = { accessTokenTtl: 3600 }
  const cimd = {
    client_id: CIMD_URL,
    client_name: "agent-auth (metadata document)",
    application_type: "native",
    redirect_uris: ["http://127.0.0.1/callback"],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none"
  }
  const provider = new Provider(issuer, {
    clients: [PRE_REGISTERED.basic, PRE_REGISTERED.post, PRE_REGISTERED.none]
      .filter((c) => options.authMethods === undefined || options.authMethods.includes(c.token_endpoint_auth_method))
      .map(nativeClient),
    ...(options.authMethods === undefined ? {} : { clientAuthMethods: options.authMethods }),
    jwks: { keys: [jwk] },
    cookies: { keys: ["mcp-test-cookie-key"] },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      registration: { enabled: true },
      clientIdMetadataDocument: { enabled: true, ack: "draft-02" },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => {
          const allowed = options.resources?.()
          if (allowed !== undefined && !allowed.includes(resourceIndicator)) throw new Error(`unknown resource ${resourceIndicator}`)
          return {
            scope: SCOPES.join(" "),
            audience: resourceIndicator,
            accessTokenFormat: "jwt",
            accessTokenTTL: state.accessTokenTtl,
            jwt: { sign: { alg: "RS256" } }
          }
        }
      }
    },
    scopes: ["openid", "offline_access", ...SCOPES],
    pkce: { required: () => true },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed: (g: string) => boolean }) => client.grantTypeAllowed("refresh_token"),
    // The document lives at an https URL no test can serve: this fetch answers for it.
    fetch: async (url: string | URL, init?: RequestInit) =>
      String(url) === CIMD_URL
        ? new Response(JSON.stringify(cimd), { status: 200, headers: { "content-type": "application/json" } })
        : fetch(url, init),
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
    ttl: { AccessToken: () => state.accessTokenTtl, AuthorizationCode: 60, RefreshToken: 86400, Grant: 86400, Session: 3600, Interaction: 3600, IdToken: 3600 }
  } as Record<string, unknown>)
  type Ctx = { oidc: { params?: Record<string, unknown>; client?: { clientId: string }; route?: string } }
  provider.on("authorization.accepted", (ctx: Ctx) =>
    void seen.push({ route: "authorization", clientId: ctx.oidc.client?.clientId, resource: ctx.oidc.params?.resource, scope: ctx.oidc.params?.scope }))
  provider.on("grant.success", (ctx: Ctx) => {
    const grantType = String(ctx.oidc.params?.grant_type)
    grants.set(grantType, (grants.get(grantType) ?? 0) + 1)
    seen.push({ route: "token", grantType, clientId: ctx.oidc.client?.clientId, resource: ctx.oidc.params?.resource })
  })
  provider.on("registration_create.success", () => void registrations++)
  handler = provider.callback()
  const result: McpIssuer = {
    issuer,
    registrations: () => registrations,
    seen,
    grants: (t) => grants.get(t) ?? 0,
    forgetClient: async (clientId) => {
      await (provider as unknown as { Client: { adapter: { destroy: (id: string) => Promise<void> } } }).Client.adapter.destroy(clientId)
    },
    get accessTokenTtl() {
      return state.accessTokenTtl
    },
    set accessTokenTtl(v: number) {
      state.accessTokenTtl = v
    },
    close: closer(server)
  }
  return result
}

export interface McpTestServer {
  /** The MCP endpoint, `http://127.0.0.1:port/mcp`. */
  readonly url: string
  /** Every Authorization header value received, in order. */
  readonly authorizations: ReadonlyArray<string>
  /** Requests by outcome. */
  readonly counts: { ok: number; unauthorized: number; forbidden: number; prm: number }
  readonly close: () => Promise<void>
}

export interface McpServerOptions {
  readonly issuer: string
  /** Where the metadata is served: `path` (RFC 9728 path-aware), `root`, or only through the header (`header`, at a private path). */
  readonly metadataAt?: "path" | "root" | "header"
  /** Whether a 401 carries `resource_metadata` (default: yes). */
  readonly challengeHeader?: boolean
  /** `authorization_servers` as published (default `[issuer]`). */
  readonly authorizationServers?: ReadonlyArray<string>
  /** The `resource` published (default the MCP endpoint URL). */
  readonly resource?: (url: string) => string
  /** The scope a 401 challenges (default `mcp:read`). */
  readonly challengeScope?: string
  /** The scope the `admin` tool needs (default `mcp:admin`); a list demands all. */
  readonly adminScopes?: ReadonlyArray<string>
  /** The `admin` tool answers 403 insufficient_scope whatever the token holds. */
  readonly alwaysForbidAdmin?: boolean
  /** While `to` is set, the MCP endpoint answers every request with a 307 there (a moved or hostile server). */
  readonly redirect?: { to?: string | undefined }
}

/** An authorization server that is not one: its metadata is `doc` at every well-known URL. */
export const startStaticAs = async (doc: (origin: string) => Record<string, unknown>) => {
  let origin = ""
  let hits = 0
  const server = http.createServer((req, res) => {
    hits++
    if ((req.url ?? "").startsWith("/.well-known/")) {
      res.setHeader("content-type", "application/json")
      res.end(JSON.stringify(doc(origin)))
      return
    }
    res.statusCode = 404
    res.end()
  })
  origin = await listen(server)
  return { issuer: origin, hits: () => hits, close: closer(server) }
}

/** Starts the MCP server; it trusts tokens from `issuer` whose audience is its resource. */
export const startMcpServer = async (options: McpServerOptions): Promise<McpTestServer> => {
  const authorizations: Array<string> = []
  const counts = { ok: 0, unauthorized: 0, forbidden: 0, prm: 0 }
  const jwks = createRemoteJWKSet(new URL(`${options.issuer}/jwks`))
  const adminScopes = options.adminScopes ?? ["mcp:admin"]
  let base = ""
  const metadataPath = () =>
    options.metadataAt === "root"
      ? "/.well-known/oauth-protected-resource"
      : options.metadataAt === "header"
      ? "/private/prm.json"
      : "/.well-known/oauth-protected-resource/mcp"
  const resource = () => (options.resource ?? ((u) => u))(`${base}/mcp`)
  const challenge = (extra = "") =>
    `Bearer ${extra}${options.challengeHeader === false ? "" : `resource_metadata="${base}${metadataPath()}", `}scope="${options.challengeScope ?? "mcp:read"}"`

  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "/").split("?")[0]
      if (req.method === "GET" && path === metadataPath()) {
        counts.prm++
        res.setHeader("content-type", "application/json")
        res.end(JSON.stringify({
          resource: resource(),
          authorization_servers: options.authorizationServers ?? [options.issuer],
          scopes_supported: ["mcp:read", "mcp:write"],
          bearer_methods_supported: ["header"]
        }))
        return
      }
      if (path !== "/mcp") {
        res.statusCode = 404
        res.end()
        return
      }
      const auth = req.headers.authorization
      if (auth !== undefined) authorizations.push(auth)
      if (options.redirect?.to !== undefined) {
        res.writeHead(307, { location: options.redirect.to })
        res.end()
        return
      }
      const chunks: Array<Buffer> = []
      for await (const c of req) chunks.push(c as Buffer)
      const text = Buffer.concat(chunks).toString()
      const body = text.length > 0 ? JSON.parse(text) as { method?: string; params?: { name?: string } } : undefined
      let scopes: Array<string> = []
      try {
        if (auth === undefined || !auth.startsWith("Bearer ")) throw new Error("no token")
        const { payload } = await jwtVerify(auth.slice(7), jwks, { issuer: options.issuer, audience: resource() })
        scopes = String(payload.scope ?? "").split(" ")
      } catch {
        counts.unauthorized++
        res.statusCode = 401
        res.setHeader("www-authenticate", challenge())
        res.end()
        return
      }
      const calls = Array.isArray(body) ? body : [body]
      if (
        calls.some((m) => m?.method === "tools/call" && m.params?.name === "admin") &&
        (options.alwaysForbidAdmin === true || !adminScopes.every((s) => scopes.includes(s)))
      ) {
        counts.forbidden++
        res.statusCode = 403
        res.setHeader("www-authenticate", `Bearer error="insufficient_scope", scope="${adminScopes.join(" ")}", resource_metadata="${base}${metadataPath()}"`)
        res.end()
        return
      }
      counts.ok++
      // Stateless: one server and transport per request.
      const mcp = new McpServer({ name: "test-mcp", version: "1.0.0" })
      mcp.registerTool("echo", { description: "says it back", inputSchema: { text: z.string() } }, ({ text }) => ({
        content: [{ type: "text", text }]
      }))
      mcp.registerTool("admin", { description: "needs mcp:admin" }, () => ({ content: [{ type: "text", text: "admin ok" }] }))
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true } as ConstructorParameters<typeof StreamableHTTPServerTransport>[0])
      res.on("close", () => {
        void transport.close()
        void mcp.close()
      })
      await mcp.connect(transport)
      await transport.handleRequest(req, res, body)
    })().catch((e) => {
      res.statusCode = 500
      res.end(String(e))
    })
  })
  base = await listen(server)
  return { url: `${base}/mcp`, authorizations, counts, close: closer(server) }
}

/**
 * An MCP endpoint (`/mcp`) that challenges with `resource_metadata` at `/meta`, which `meta`
 * answers; any other path serves metadata for `/mcp` naming `issuer`. Counts the hits of each path.
 */
export const startRawMcpEndpoint = async (
  issuer: string,
  meta: (res: http.ServerResponse, origin: string) => void
) => {
  const hits = new Map<string, number>()
  let origin = ""
  const server = http.createServer((req, res) => {
    const path = req.url ?? ""
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (path === "/meta") return meta(res, origin)
    if (path === "/mcp") {
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${origin}/meta"` })
      return res.end()
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ resource: `${origin}/mcp`, authorization_servers: [issuer] }))
  })
  origin = await listen(server)
  return { url: `${origin}/mcp`, origin, hits, close: closer(server) }
}
