/**
 * MCP servers, in-process against real components: oidc-provider as the authorization
 * server, an MCP server built with @modelcontextprotocol/sdk, and the SDK's client over
 * `McpAuth.fetch` (test/support/mcpServers.ts). Nothing beyond loopback.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { type AuthError, BrowserLauncher, CallbackServer, Domain, Revoker, TokenStore } from "@agent-auth/core"
import { McpAuth, McpLogin, McpServers } from "@agent-auth/mcp"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeCallbackServer } from "@agent-auth/node"
import { DateTime, Deferred, Effect, Exit, Fiber, Layer, Redacted, TestClock, TestContext } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  CIMD_URL,
  type McpIssuer,
  type McpServerOptions,
  type McpTestServer,
  PRE_REGISTERED,
  startMcpIssuer,
  startMcpServer
} from "./support/mcpServers.js"
import { mcpLayer } from "./support/mcpServices.js"

let issuer: McpIssuer
let server: McpTestServer

beforeAll(async () => {
  issuer = await startMcpIssuer()
  server = await startMcpServer({ issuer: issuer.issuer })
})
afterAll(async () => {
  await server?.close()
  await issuer?.close()
})

type Services = Layer.Layer.Success<ReturnType<typeof mcpLayer>>

/** Runs with the services; the layer is built once per call (a fresh memory store and server store). */
const run = <A, E>(effect: Effect.Effect<A, E, Services>, layer = mcpLayer()): Promise<A> =>
  Effect.runPromise(Effect.provide(effect, layer) as Effect.Effect<A, E>)

/** The SDK's client over `fetch`; closed after `use`. */
const withClient = async <A>(url: string, fetch: typeof globalThis.fetch, use: (c: Client) => Promise<A>): Promise<A> => {
  const client = new Client({ name: "test-runtime", version: "1.0.0" })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch }))
  try {
    return await use(client)
  } finally {
    await client.close()
  }
}

const login = (url: string, options: Partial<McpLogin.McpLoginOptions> = {}) =>
  McpLogin.login({ url, ...options })

describe("MCP sign-in, in-process", () => {
  it("login: 401 challenge → metadata → issuer → registration → PKCE with resource; the SDK client lists and calls tools", async () => {
    const registrationsBefore = issuer.registrations()
    const seenBefore = issuer.seen.length
    const texts = await run(
      Effect.gen(function*() {
        const result = yield* login(server.url)
        expect(result.record).toMatchObject({
          url: server.url,
          issuer: issuer.issuer,
          resource: server.url,
          resourceMetadata: `${server.url.replace("/mcp", "")}/.well-known/oauth-protected-resource/mcp`,
          scopes: ["mcp:read"],
          client: "dynamic",
          tokenEndpointAuthMethod: "none"
        })
        const auth = yield* McpAuth.McpAuth
        const fetch = yield* auth.fetch(server.url)
        return yield* Effect.promise(() =>
          withClient(server.url, fetch, async (client) => {
            const tools = await client.listTools()
            const called = await client.callTool({ name: "echo", arguments: { text: "hello" } })
            return { tools: tools.tools.map((t) => t.name).sort(), called: called.content }
          })
        )
      })
    )
    expect(texts.tools).toEqual(["admin", "echo"])
    expect(texts.called).toEqual([{ type: "text", text: "hello" }])
    expect(issuer.registrations() - registrationsBefore).toBe(1)
    // `resource` in the authorization and token requests, as the server saw them.
    const seen = issuer.seen.slice(seenBefore)
    expect(seen.map((s) => [s.route, s.grantType, s.resource])).toEqual([
      ["authorization", undefined, server.url],
      ["token", "authorization_code", server.url]
    ])
  })

  it("a library caller without a login gets NotLoggedIn naming `agent-auth mcp login <url>`", async () => {
    const error = await run(
      Effect.flip(Effect.flatMap(McpAuth.McpAuth, (auth) => auth.fetch(server.url)))
    ) as AuthError
    expect(error._tag).toBe("NotLoggedIn")
    expect(error.message).toContain(`run \`agent-auth mcp login ${server.url}\``)
  })

  it("token only in the Authorization header, refreshed once on a 401, and only to its server", async () => {
    const other = await startMcpServer({ issuer: issuer.issuer })
    try {
      await run(
        Effect.gen(function*() {
          yield* login(server.url)
          const auth = yield* McpAuth.McpAuth
          const fetch = yield* auth.fetch(server.url)
          const store = yield* TokenStore.TokenStore
          // A token the server does not accept: one refresh, then the call goes through.
          const [stored] = yield* store.list(McpServers.defaultName(server.url))
          if (stored?._tag !== "OAuthCredential") throw new Error("no login stored")
          yield* store.set({ ...stored, tokens: { ...stored.tokens, accessToken: Redacted.make("not-a-valid-token") } } as typeof stored)
          const refreshesBefore = issuer.grants("refresh_token")
          yield* Effect.promise(() => withClient(server.url, fetch, (c) => c.listTools()))
          expect(issuer.grants("refresh_token") - refreshesBefore).toBe(1)
          // The same fetch, asked for another server: passed through without a token.
          const answer = yield* Effect.promise(() => fetch(other.url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }))
          expect(answer.status).toBe(401)
        })
      )
      expect(other.authorizations).toEqual([])
      expect(server.authorizations.every((a) => a.startsWith("Bearer "))).toBe(true)
    } finally {
      await other.close()
    }
  })
})

/** A server for one test, closed after it. */
const withServer = async <A>(options: McpServerOptions, use: (s: McpTestServer) => Promise<A>): Promise<A> => {
  const s = await startMcpServer(options)
  try {
    return await use(s)
  } finally {
    await s.close()
  }
}

/** Logs in and calls the `echo` tool through the SDK client; the record the login stored. */
const loginAndCall = (url: string, options: Partial<McpLogin.McpLoginOptions> = {}) =>
  Effect.gen(function*() {
    const result = yield* login(url, options)
    const auth = yield* McpAuth.McpAuth
    const fetch = yield* auth.fetch(url)
    const called = yield* Effect.promise(() => withClient(url, fetch, (c) => c.callTool({ name: "echo", arguments: { text: "hi" } })))
    expect(called.content).toEqual([{ type: "text", text: "hi" }])
    return result.record
  })

describe("discovery variants and refusals", () => {
  it("well-known URI with the path, when the 401 names no metadata", () =>
    withServer({ issuer: issuer.issuer, challengeHeader: false, metadataAt: "path" }, (s) =>
      run(Effect.map(loginAndCall(s.url), (record) => {
        expect(record.resourceMetadata).toBe(`${s.url.replace("/mcp", "")}/.well-known/oauth-protected-resource/mcp`)
      }))))

  it("well-known URI at the root, after the path one is missing", () =>
    withServer({ issuer: issuer.issuer, challengeHeader: false, metadataAt: "root" }, (s) =>
      run(Effect.map(loginAndCall(s.url), (record) => {
        expect(record.resourceMetadata).toBe(`${s.url.replace("/mcp", "")}/.well-known/oauth-protected-resource`)
      }))))

  it("metadata only where the header says; a published bare-origin resource is sent exactly as published", () =>
    withServer({ issuer: issuer.issuer, metadataAt: "header", resource: (u) => new URL(u).origin }, (s) =>
      run(Effect.gen(function*() {
        const before = issuer.seen.length
        // The server checks `aud` against its published resource: the call passing proves the token's audience.
        const record = yield* loginAndCall(s.url)
        expect(record.resource).toBe(new URL(s.url).origin)
        expect(issuer.seen.slice(before).map((x) => x.resource)).toEqual([record.resource, record.resource])
      }))))

  it("an authorization server under a path (/tenant-a): found at its third metadata URL", async () => {
    const tenant = await startMcpIssuer({ path: "/tenant-a" })
    try {
      await withServer({ issuer: tenant.issuer }, (s) =>
        run(Effect.map(loginAndCall(s.url), (record) => {
          expect(record.issuer).toBe(tenant.issuer)
          expect(tenant.registrations()).toBe(1)
        })))
    } finally {
      await tenant.close()
    }
  })

  // The refusals (another issuer, no S256, plain-http endpoints or authorization server, a
  // PRM for another resource, oversize or redirected metadata, a foreign `iss`) are attacks,
  // counted in the hardening table: test/hardening/mcp.test.ts.
})

describe("registration, once per issuer", () => {
  it("login, logout, login: one registration; a forgotten client: exactly one new one; another issuer: its own client", async () => {
    const other = await startMcpIssuer()
    try {
      await withServer({ issuer: issuer.issuer }, (s) =>
        withServer({ issuer: other.issuer }, (s2) =>
          run(Effect.gen(function*() {
            const before = issuer.registrations()
            const first = yield* loginAndCall(s.url)
            const revoker = yield* Revoker.Revoker
            const name = McpServers.defaultName(s.url)
            yield* revoker.logout({ provider: name, account: "default" })
            const second = yield* loginAndCall(s.url)
            expect(second.clientId).toBe(first.clientId)
            expect(issuer.registrations() - before).toBe(1)
            // The issuer forgets the client: its RFC 7592 read says so, and the next login registers once more.
            yield* Effect.promise(() => issuer.forgetClient(first.clientId))
            const third = yield* loginAndCall(s.url)
            expect(third.clientId).not.toBe(first.clientId)
            expect(issuer.registrations() - before).toBe(2)
            // Another server on another issuer: a client of its own there; this one's untouched.
            const elsewhere = yield* loginAndCall(s2.url)
            expect(other.registrations()).toBe(1)
            expect(elsewhere.clientId).not.toBe(third.clientId)
            expect(issuer.registrations() - before).toBe(2)
          }))))
      // Each server saw only its own tokens: the second server's tokens never reached the first, nor the reverse.
    } finally {
      await other.close()
    }
  })

  it("a refresh refused with invalid_client forgets the registration; the next login registers once", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      run(Effect.gen(function*() {
        const { credential, record } = yield* login(s.url)
        expect(record.client).toBe("dynamic")
        yield* Effect.promise(() => issuer.forgetClient(record.clientId))
        const store = yield* TokenStore.TokenStore
        yield* store.set(Domain.OAuthCredential.make({
          ...credential,
          tokens: Domain.TokenSet.make({ ...credential.tokens, expiresAt: DateTime.unsafeMake(Date.now() - 1000) })
        }))
        const auth = yield* McpAuth.McpAuth
        const fetch = yield* auth.fetch(s.url)
        const error = yield* Effect.promise(() =>
          fetch(s.url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }).then(() => undefined, (e: unknown) => e))
        expect(String(error)).toContain("(invalid_client)")
        expect(String(error)).toContain(`agent-auth mcp login ${s.url}`)
        const servers = yield* McpServers.McpServers
        expect((yield* servers.read).registrations[issuer.issuer]).toBeUndefined()
        const before = issuer.registrations()
        const again = yield* loginAndCall(s.url)
        expect(again.clientId).not.toBe(record.clientId)
        expect(issuer.registrations() - before).toBe(1)
      }))))

  it("a token is sent only to the server it was issued for (asserted at a second MCP server)", () =>
    withServer({ issuer: issuer.issuer }, (a) =>
      withServer({ issuer: issuer.issuer }, (b) =>
        run(Effect.gen(function*() {
          yield* loginAndCall(a.url)
          const auth = yield* McpAuth.McpAuth
          const fetchA = yield* auth.fetch(a.url)
          // The SDK client for B given A's fetch: B must see no token (and so answers 401).
          const failed = yield* Effect.promise(() => withClient(b.url, fetchA, (c) => c.listTools()).then(() => "connected", () => "refused"))
          expect(failed).toBe("refused")
          expect(b.authorizations).toEqual([])
          expect(a.authorizations.length).toBeGreaterThan(0)
        })))))
})

describe("clients: pre-registered, metadata document", () => {
  const configured = (url: string, entry: Record<string, unknown>) =>
    mcpLayer({ file: { providers: { docs: { kind: "mcp", url, ...entry } } } })

  it("config.json client with a secret: client_secret_basic (the server offers both)", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      run(
        Effect.map(loginAndCall(s.url, { name: "docs" }), (record) => {
          expect(record).toMatchObject({ clientId: "mcp-basic", tokenEndpointAuthMethod: "client_secret_basic", client: "configured" })
          expect(issuer.seen.at(-1)).toMatchObject({ route: "token", clientId: "mcp-basic", resource: s.url })
        }),
        configured(s.url, { clientId: PRE_REGISTERED.basic.client_id, clientSecret: Redacted.make(PRE_REGISTERED.basic.client_secret) })
      )))

  it("config.json client with a secret at a server that offers only client_secret_post", async () => {
    const postOnly = await startMcpIssuer({ authMethods: ["client_secret_post", "none"] })
    try {
      await withServer({ issuer: postOnly.issuer }, (s) =>
        run(
          Effect.map(loginAndCall(s.url, { name: "docs" }), (record) => {
            expect(record).toMatchObject({ clientId: "mcp-post", tokenEndpointAuthMethod: "client_secret_post" })
            expect(postOnly.grants("authorization_code")).toBe(1)
          }),
          configured(s.url, { clientId: PRE_REGISTERED.post.client_id, clientSecret: Redacted.make(PRE_REGISTERED.post.client_secret) })
        ))
    } finally {
      await postOnly.close()
    }
  })

  it("--client-id of a public client: none, and no registration", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      run(Effect.gen(function*() {
        const before = issuer.registrations()
        const record = yield* loginAndCall(s.url, { clientId: PRE_REGISTERED.none.client_id })
        expect(record).toMatchObject({ clientId: "mcp-none", tokenEndpointAuthMethod: "none", client: "configured" })
        expect(issuer.registrations()).toBe(before)
      }))))

  it("a Client ID Metadata Document: its URL is the client_id, fetched by the server, never registered", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      run(
        Effect.gen(function*() {
          const before = issuer.registrations()
          const record = yield* loginAndCall(s.url, { name: "docs" })
          expect(record).toMatchObject({ clientId: CIMD_URL, client: "metadata_document", tokenEndpointAuthMethod: "none" })
          expect(issuer.seen.at(-1)).toMatchObject({ route: "token", clientId: CIMD_URL })
          expect(issuer.registrations()).toBe(before)
        }),
        configured(s.url, { clientMetadataUrl: CIMD_URL })
      )))
})

describe("step-up and refresh through McpAuth.fetch", () => {
  /** A sign-in the runtime can do (here: the headless browser), as `signIn`. */
  const interactive = Effect.map(Effect.context<Services>(), (ctx) => (r: McpAuth.StepUpRequest) =>
    McpLogin.login({ url: r.url, name: r.name, scopes: r.scopes }).pipe(Effect.asVoid, Effect.provide(ctx)))

  it("403 insufficient_scope → one new authorization for the union of scopes → the call succeeds", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      run(Effect.gen(function*() {
        yield* login(s.url)
        const before = issuer.seen.length
        const auth = yield* McpAuth.McpAuth
        const fetch = yield* auth.fetch(s.url, { signIn: yield* interactive })
        const called = yield* Effect.promise(() => withClient(s.url, fetch, (c) => c.callTool({ name: "admin", arguments: {} })))
        expect(called.content).toEqual([{ type: "text", text: "admin ok" }])
        const authorizations = issuer.seen.slice(before).filter((x) => x.route === "authorization")
        expect(authorizations.map((x) => x.scope)).toEqual(["mcp:read mcp:admin"])
        expect(s.counts.forbidden).toBe(1)
      }))))

  it("a server that keeps refusing: two step-ups at most, then NotLoggedIn naming the scopes", () =>
    withServer({ issuer: issuer.issuer, alwaysForbidAdmin: true }, (s) =>
      run(Effect.gen(function*() {
        yield* login(s.url)
        const before = issuer.seen.length
        const auth = yield* McpAuth.McpAuth
        const fetch = yield* auth.fetch(s.url, { signIn: yield* interactive })
        const error = yield* Effect.promise(() => withClient(s.url, fetch, (c) => c.callTool({ name: "admin", arguments: {} })).then(() => undefined, (e: unknown) => e))
        expect(issuer.seen.slice(before).filter((x) => x.route === "authorization")).toHaveLength(2)
        expect(s.counts.forbidden).toBe(3)
        expect(String(error)).toContain(`agent-auth mcp login ${s.url} --scope mcp:read --scope mcp:admin`)
      }))))

  it("without interaction: NotLoggedIn naming `agent-auth mcp login URL --scope …`, no new authorization", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      run(Effect.gen(function*() {
        yield* login(s.url)
        const before = issuer.seen.length
        const auth = yield* McpAuth.McpAuth
        const fetch = yield* auth.fetch(s.url)
        const error = yield* Effect.promise(() =>
          withClient(s.url, fetch, (c) => c.callTool({ name: "admin", arguments: {} })).then(() => undefined, (e: unknown) => e))
        expect(String(error)).toContain(`run \`agent-auth mcp login ${s.url} --scope mcp:read --scope mcp:admin\``)
        expect(issuer.seen.length).toBe(before)
      }))))

  it("50 concurrent SDK requests on an expired token: one refresh at the server", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      run(Effect.gen(function*() {
        const { credential, name } = yield* login(s.url)
        const store = yield* TokenStore.TokenStore
        const past = DateTime.unsafeMake(Date.now() - 60_000)
        yield* store.set(Domain.OAuthCredential.make({ ...credential, tokens: Domain.TokenSet.make({ ...credential.tokens, expiresAt: past }) }))
        expect(name).toBe(McpServers.defaultName(s.url))
        const auth = yield* McpAuth.McpAuth
        const fetch = yield* auth.fetch(s.url)
        const before = issuer.grants("refresh_token")
        const results = yield* Effect.promise(() =>
          withClient(s.url, fetch, (c) =>
            Promise.all(Array.from({ length: 50 }, (_, i) => c.callTool({ name: "echo", arguments: { text: `n${i}` } })))))
        expect(results).toHaveLength(50)
        expect(issuer.grants("refresh_token") - before).toBe(1)
        // The refresh carried the resource too.
        expect(issuer.seen.filter((x) => x.grantType === "refresh_token").at(-1)?.resource).toBe(s.url)
      }))))
})

describe("McpAuth.layer: HttpClient middleware", () => {
  it("signs requests to its server only; a 401 refreshes once and retries; an unknown server: the layer fails with NotLoggedIn", () =>
    withServer({ issuer: issuer.issuer }, (s) =>
      withServer({ issuer: issuer.issuer }, (other) =>
        run(Effect.gen(function*() {
          const { credential } = yield* login(s.url)
          const initialize = (url: string) =>
            Effect.flatMap(HttpClient.HttpClient, (client) =>
              client.execute(
                HttpClientRequest.post(url).pipe(
                  HttpClientRequest.setHeader("accept", "application/json, text/event-stream"),
                  HttpClientRequest.bodyUnsafeJson(McpLogin.initializeRequest)
                )
              )).pipe(Effect.map((r) => r.status), Effect.scoped)
          const signed = McpAuth.layer(s.url).pipe(Layer.provide(FetchHttpClient.layer))
          expect(yield* initialize(s.url).pipe(Effect.provide(signed))).toBe(200)
          expect(yield* initialize(other.url).pipe(Effect.provide(signed))).toBe(401)
          expect(other.authorizations).toEqual([])
          const store = yield* TokenStore.TokenStore
          yield* store.set(Domain.OAuthCredential.make({
            ...credential,
            tokens: Domain.TokenSet.make({ ...credential.tokens, accessToken: Redacted.make("revoked-elsewhere") })
          }))
          const before = issuer.grants("refresh_token")
          expect(yield* initialize(s.url).pipe(Effect.provide(signed))).toBe(200)
          expect(issuer.grants("refresh_token") - before).toBe(1)
          const failed = yield* Effect.flip(initialize(s.url).pipe(Effect.provide(McpAuth.layer("https://unknown.example/mcp").pipe(Layer.provide(FetchHttpClient.layer)))))
          expect(failed._tag).toBe("NotLoggedIn")
        })))))
})

describe("a failed login names `agent-auth mcp login URL --scope …` (in-process)", () => {
  const command = () => `agent-auth mcp login ${server.url} --scope mcp:read --scope mcp:write`

  it("timeout, under TestClock: LoginTimeout names the MCP command with its scopes", async () => {
    const error = await run(
      Effect.gen(function*() {
        const waiting = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          McpLogin.login({ url: server.url, scopes: ["mcp:read", "mcp:write"] }, {
            timeout: "5 minutes",
            onEvent: (e) => (e._tag === "BrowserSkipped" ? Deferred.succeed(waiting, undefined) : Effect.void)
          }).pipe(Effect.provide(BrowserLauncher.layerNone("test")))
        )
        yield* Deferred.await(waiting)
        // The login's timer is the only sleep once it waits for the browser: then five minutes pass.
        while ((yield* TestClock.sleeps()).length === 0) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
        yield* TestClock.adjust("4 minutes")
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
        expect(fiber.unsafePoll()).toBeNull()
        yield* TestClock.adjust("1 minute")
        const exit = yield* Fiber.await(fiber)
        return Exit.isFailure(exit) ? Effect.runSync(Effect.flip(exit)) : undefined
      }).pipe(Effect.provide(TestContext.TestContext))
    )
    expect(error?._tag).toBe("LoginTimeout")
    expect(error?.message).toContain("timed out after 300 s")
    expect(error?.message).toContain(`run \`${command()}\` again`)
    expect(error?.message).not.toContain("--device")
  })

  it("a state that is not this login's reaching the flow: StateMismatch names the MCP command", async () => {
    // The listener refuses a wrong state itself (test/mcp-cli.test.ts); here one gets past it, and the flow's own check refuses it.
    const forging = Layer.effect(
      CallbackServer.CallbackServer,
      Effect.map(CallbackServer.CallbackServer, (real) => ({
        listen: (options: CallbackServer.ListenOptions) =>
          Effect.map(real.listen(options), (listener) => ({
            ...listener,
            awaitCallback: (state: string) => Effect.map(listener.awaitCallback(state), (p) => ({ ...p, state: "forged-state" }))
          }))
      }))
    ).pipe(Layer.provide(NodeCallbackServer.layer))
    const codeGrants = issuer.grants("authorization_code")
    const error = await run(Effect.flip(McpLogin.login({ url: server.url, scopes: ["mcp:read", "mcp:write"] }).pipe(Effect.provide(forging))))
    expect(error._tag).toBe("StateMismatch")
    expect(error.message).toContain(`Use the URL from the current \`${command()}\``)
    expect(issuer.grants("authorization_code")).toBe(codeGrants)
  })
})
