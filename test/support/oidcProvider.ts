/**
 * panva's oidc-provider (a certified OpenID provider) started in-process on 127.0.0.1 at a
 * random port, configured the way an issuer for agent-auth would be: public native clients
 * (no secret, loopback redirect URIs with any port, RFC 8252 §7.3), PKCE required, refresh
 * tokens issued and rotated, revocation, introspection, device flow, and the built-in
 * development login and consent pages (any login name works).
 *
 * It counts what the tests must observe on the server side: token grants by type, revoked
 * grants, JWKS fetches. `rotateKeys` restarts the provider on the same issuer and port with
 * a new signing key; its storage (the process-wide memory adapter) survives, as a real
 * server's database would.
 */
import { exportJWK, generateKeyPair } from "jose"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import Provider, { type OidcContext, type ProviderClient } from "oidc-provider"

/** Public native client: code-grant access tokens live an hour. */
export const CLIENT_ID = "agent-cli"
/** Public native client whose code-grant access tokens live 60 s (inside the 5-minute refresh skew); refreshed ones an hour. */
export const SHORT_CLIENT_ID = "agent-cli-short"
/** Public native client whose access tokens, refreshed ones too, all live 60 s (inside the 5-minute refresh skew). */
export const MINUTE_CLIENT_ID = "agent-cli-minute"
/** A resource server allowed to introspect every token (confidential, client_secret_basic). */
const INTROSPECTOR_ID = "resource-server"
const INTROSPECTOR_SECRET = "resource-server-secret-for-tests-only"

export const SHORT_ACCESS_TOKEN_TTL = 60
export const ACCESS_TOKEN_TTL = 60 * 60

export type Introspection = { readonly active: boolean } & Readonly<Record<string, unknown>>

export interface OidcServer {
  readonly issuer: string
  /** Successful token-endpoint grants, by grant_type. */
  readonly grants: (grantType: string) => number
  /** Grants the server revoked (logout, refresh-token replay). */
  readonly revokedGrants: () => number
  /** Requests to the token endpoint (POST /token), whatever their outcome. */
  readonly tokenRequests: () => number
  /** GET requests on the JWKS endpoint. */
  readonly jwksFetches: () => number
  /** The `kid` the provider signs with now. */
  readonly signingKid: () => string
  /** RFC 7662 introspection by the resource server. */
  readonly introspect: (token: string, hint?: "access_token" | "refresh_token") => Promise<Introspection>
  /**
   * Holds the answers to refresh grants this long after the server processed them (the
   * refresh token already rotated): a slow network, or a client cut off mid-refresh. 0 stops.
   */
  readonly holdRefreshAnswers: (millis: number) => void
  /** Restarts the provider on the same issuer with a new signing key; the old one is no longer published. */
  readonly rotateKeys: () => Promise<void>
  readonly close: () => Promise<void>
}

type Jwk = Record<string, unknown> & { readonly kid: string }

let keyCounter = 0
const signingKey = async (): Promise<Jwk> => {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true })
  return { ...(await exportJWK(privateKey)), kid: `test-key-${++keyCounter}`, alg: "RS256", use: "sig" }
}

const nativeClient = (clientId: string) => ({
  client_id: clientId,
  application_type: "native",
  token_endpoint_auth_method: "none",
  // Native clients' loopback redirect URIs match on any port; /auth/callback is the hosted example's.
  redirect_uris: ["http://127.0.0.1/callback", "http://127.0.0.1/auth/callback"],
  response_types: ["code"],
  grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]
})

const configuration = (keys: ReadonlyArray<Jwk>) => ({
  clients: [
    nativeClient(CLIENT_ID),
    nativeClient(SHORT_CLIENT_ID),
    nativeClient(MINUTE_CLIENT_ID),
    {
      client_id: INTROSPECTOR_ID,
      client_secret: INTROSPECTOR_SECRET,
      token_endpoint_auth_method: "client_secret_basic",
      redirect_uris: [],
      response_types: [],
      grant_types: []
    }
  ],
  jwks: { keys },
  cookies: { keys: ["oidc-provider-cookie-key-for-tests-only"] },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true }
  },
  // Public clients need PKCE anyway in v9; say it for every client.
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  // Put the email into the ID token too (it is what `status` shows and the account name).
  conformIdTokenClaims: false,
  findAccount: (_ctx: unknown, sub: string) => ({
    accountId: sub,
    claims: () => ({ sub, email: `${sub}@example.test`, email_verified: true })
  }),
  ttl: {
    AccessToken: (ctx: OidcContext | undefined, _token: unknown, client: ProviderClient) =>
      client.clientId === MINUTE_CLIENT_ID ||
        (client.clientId === SHORT_CLIENT_ID && ctx?.oidc?.params?.grant_type !== "refresh_token")
        ? SHORT_ACCESS_TOKEN_TTL
        : ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    DeviceCode: 10 * 60,
    IdToken: 60 * 60,
    RefreshToken: 14 * 24 * 60 * 60,
    Interaction: 60 * 60,
    Session: 60 * 60,
    Grant: 14 * 24 * 60 * 60
  }
})

/** Starts the server; `close` it when done. */
export const startOidcProvider = async (): Promise<OidcServer> => {
  const grantCounts = new Map<string, number>()
  let revoked = 0
  let jwks = 0
  let keys: ReadonlyArray<Jwk> = [await signingKey()]
  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined
  let holdMillis = 0
  let tokenRequests = 0

  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url?.split("?")[0] === "/jwks") jwks++
    if (req.method === "POST" && req.url?.split("?")[0] === "/token") tokenRequests++
    if (handler === undefined) {
      res.statusCode = 503
      res.end()
      return
    }
    handler(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const boot = () => {
    const provider = new Provider(issuer, configuration(keys))
    provider.on("grant.success", (ctx: OidcContext) => {
      const type = String(ctx.oidc?.params?.grant_type)
      grantCounts.set(type, (grantCounts.get(type) ?? 0) + 1)
    })
    provider.on("grant.revoked", () => void revoked++)
    // After `next`, the grant is processed (a refresh token rotated); the answer waits here.
    provider.use(async (ctx: OidcContext, next: () => Promise<void>) => {
      await next()
      if (holdMillis > 0 && ctx.oidc?.params?.grant_type === "refresh_token") {
        await new Promise((resolve) => setTimeout(resolve, holdMillis))
      }
    })
    handler = provider.callback()
  }
  boot()

  const introspect = async (token: string, hint?: "access_token" | "refresh_token"): Promise<Introspection> => {
    const body = new URLSearchParams({ token, ...(hint === undefined ? {} : { token_type_hint: hint }) })
    const response = await fetch(`${issuer}/token/introspection`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${INTROSPECTOR_ID}:${INTROSPECTOR_SECRET}`).toString("base64")}`
      },
      body
    })
    if (response.status !== 200) throw new Error(`introspection answered HTTP ${response.status}: ${await response.text()}`)
    return (await response.json()) as Introspection
  }

  return {
    issuer,
    grants: (type) => grantCounts.get(type) ?? 0,
    revokedGrants: () => revoked,
    jwksFetches: () => jwks,
    tokenRequests: () => tokenRequests,
    signingKid: () => keys[0]!.kid,
    holdRefreshAnswers: (millis) => void (holdMillis = millis),
    introspect,
    rotateKeys: async () => {
      keys = [await signingKey()]
      boot()
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
