/**
 * MCP servers, in-process against real components: oidc-provider as the authorization
 * server, an MCP server built with @modelcontextprotocol/sdk, and the SDK's client over
 * `McpAuth.fetch` (test/support/mcpServers.ts). Nothing beyond loopback.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { type AuthError, TokenStore } from "@agent-auth/core"
import { McpAuth, McpLogin, McpServers } from "@agent-auth/mcp"
import { Effect, Layer, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type McpIssuer, type McpTestServer, startMcpIssuer, startMcpServer } from "./support/mcpServers.js"
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
