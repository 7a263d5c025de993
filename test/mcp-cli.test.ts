/**
 * The `agent-auth mcp` commands as a user runs them (the built bundle as a child process),
 * against oidc-provider and an MCP server built with the SDK; then the SDK's client in this
 * process over `McpAuth.fetch`, reading the same AGENT_AUTH_HOME.
 */
import { FetchHttpClient } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { AuthConfig, ProviderRegistry, Refresher } from "@agent-auth/core"
import { McpAuth, McpServers } from "@agent-auth/mcp"
import { NodeTokenStore } from "@agent-auth/node"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Browser } from "./support/browser.js"
import { cliEnv, finish, nextEvent, run, start, tempHome } from "./support/cli.js"
import { type McpIssuer, type McpTestServer, startMcpIssuer, startMcpServer } from "./support/mcpServers.js"

let issuer: McpIssuer
let server: McpTestServer
const homes: Array<string> = []

beforeAll(async () => {
  issuer = await startMcpIssuer()
  server = await startMcpServer({ issuer: issuer.issuer })
})
afterAll(async () => {
  await server?.close()
  await issuer?.close()
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true })
})

const newHome = () => {
  const home = tempHome()
  homes.push(home)
  return home
}

/** `mcp login URL --no-browser --json`, the browser part done by a headless one following the printed URL. */
const cliLogin = async (home: string, url: string, extra: ReadonlyArray<string> = []) => {
  const child = start(["mcp", "login", url, "--no-browser", "--json", ...extra], cliEnv(home))
  const done = finish(child)
  const shown = await nextEvent(child, "authorization_url")
  const visit = await new Browser().navigate(String(shown.url), { fields: { login: "alice", password: "any" } })
  const result = await done
  return { result, visit, shown }
}

const lines = (stdout: string) => stdout.trim().split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>)

/** McpAuth in this process over the home's file store and mcp.json. */
const servicesAt = (home: string) => {
  const base = Layer.mergeAll(AuthConfig.layerWith({ home }), FetchHttpClient.layer, NodeFileSystem.layer)
  const stored = Layer.mergeAll(NodeTokenStore.layerFile, McpServers.layerFile).pipe(Layer.provideMerge(base))
  const registry = ProviderRegistry.layer.pipe(Layer.provideMerge(stored))
  return McpAuth.layerService.pipe(Layer.provideMerge(Refresher.layer.pipe(Layer.provideMerge(registry))))
}

describe("agent-auth mcp (CLI)", () => {
  it("mcp login --no-browser --json, then the SDK client lists and calls tools; token URL = token NAME; list, status, logout", async () => {
    const home = newHome()
    const { result, shown } = await cliLogin(home, server.url)
    expect(result.code, result.stderr).toBe(0)
    const events = lines(result.stdout)
    expect(events.map((e) => e.event)).toEqual(["authorization_url", "logged_in"])
    const name = McpServers.defaultName(server.url)
    expect(events[1]).toMatchObject({ provider: name, url: server.url, issuer: issuer.issuer, resource: server.url, scopes: ["mcp:read"] })
    expect(new URL(String(shown.url)).searchParams.get("resource")).toBe(server.url)

    // The SDK client, over McpAuth.fetch, on the login the CLI stored.
    const called = await Effect.runPromise(
      Effect.gen(function*() {
        const auth = yield* McpAuth.McpAuth
        const fetch = yield* auth.fetch(server.url)
        return yield* Effect.promise(async () => {
          const client = new Client({ name: "cli-test", version: "1.0.0" })
          await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { fetch }))
          const tools = await client.listTools()
          const answer = await client.callTool({ name: "echo", arguments: { text: "from the SDK" } })
          await client.close()
          return { tools: tools.tools.map((t) => t.name).sort(), answer: answer.content }
        })
      }).pipe(Effect.provide(servicesAt(home)))
    )
    expect(called).toEqual({ tools: ["admin", "echo"], answer: [{ type: "text", text: "from the SDK" }] })

    const byUrl = await run(["token", server.url], cliEnv(home))
    const byName = await run(["token", name], cliEnv(home))
    expect(byUrl.code, byUrl.stderr).toBe(0)
    expect(byName.code, byName.stderr).toBe(0)
    expect(byUrl.stdout).toBe(byName.stdout)
    expect(byName.stdout.trim().split(".")).toHaveLength(3)
    // The same through the whole CLI (AGENT_AUTH_FAST=0), not the small bundle.
    const slow = await run(["token", server.url], cliEnv(home, { AGENT_AUTH_FAST: "0" }))
    expect(slow.stdout).toBe(byName.stdout)

    // The token appears nowhere but token's stdout: not in the login's output, list, status (masked), verbose traces.
    const secret = byName.stdout.trim()
    const verbose = await run(["status", name, "--verbose"], cliEnv(home))
    for (const out of [result.stdout, result.stderr, verbose.stdout, verbose.stderr]) expect(out).not.toContain(secret)

    const list = await run(["mcp", "list", "--json"], cliEnv(home))
    expect(list.stdout + list.stderr).not.toContain(secret)
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout)).toMatchObject({
      servers: [{ name, url: server.url, issuer: issuer.issuer, client: "dynamic", state: "logged_in", scopes: ["mcp:read"] }]
    })
    const status = await run(["status", server.url, "--json"], cliEnv(home))
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ providers: [{ provider: name, usable: true, mode: "oauth_only" }] })

    const registrations = issuer.registrations()
    const logout = await run(["mcp", "logout", name], cliEnv(home))
    expect(logout.code, logout.stderr).toBe(0)
    expect(logout.stderr).toContain("Revoked the login")
    const after = await run(["status", name], cliEnv(home))
    expect(after.code).toBe(1)
    // status prints its answer, "Not logged in" included, on stdout.
    expect(after.stdout).toContain(`agent-auth mcp login ${server.url}`)
    const token = await run(["token", name], cliEnv(home))
    expect(token.code).toBe(1)
    expect(token.stderr).toContain(`agent-auth mcp login ${server.url}`)

    // Signing in again reuses the registration kept in mcp.json.
    const again = await cliLogin(home, server.url)
    expect(again.result.code, again.result.stderr).toBe(0)
    expect(issuer.registrations()).toBe(registrations)
  }, 90_000)

  it("8 processes whose MCP token is due: exactly one refresh at the authorization server", async () => {
    const home = newHome()
    const { result } = await cliLogin(home, server.url, ["--name", "tools"])
    expect(result.code, result.stderr).toBe(0)
    // Make the stored token due: its expiry in the past (the refresh token still good).
    const file = `${home}/credentials.json`
    const stored = JSON.parse(fs.readFileSync(file, "utf8")) as { credentials: Array<{ tokens: { expiresAt: string } }> }
    stored.credentials[0]!.tokens.expiresAt = new Date(Date.now() - 1000).toISOString()
    fs.writeFileSync(file, JSON.stringify(stored), { mode: 0o600 })
    const before = issuer.grants("refresh_token")
    const results = await Promise.all(Array.from({ length: 8 }, () => run(["token", "tools"], cliEnv(home))))
    for (const r of results) expect(r.code, r.stderr).toBe(0)
    expect(new Set(results.map((r) => r.stdout)).size).toBe(1)
    expect(issuer.grants("refresh_token") - before).toBe(1)
    expect(issuer.seen.filter((s) => s.grantType === "refresh_token").at(-1)?.resource).toBe(server.url)
    // refresh and logout take the URL too.
    const refreshed = await run(["refresh", server.url], cliEnv(home))
    expect(refreshed.code, refreshed.stderr).toBe(0)
    expect(issuer.grants("refresh_token") - before).toBe(2)
    const out = await run(["logout", server.url], cliEnv(home))
    expect(out.code, out.stderr).toBe(0)
    expect(out.stderr).toContain("Revoked")
    expect((await run(["token", "tools"], cliEnv(home))).code).toBe(1)
  }, 90_000)

  it("a login without a refresh token: `refresh` names `agent-auth mcp login URL`, not `agent-auth login`", async () => {
    const home = newHome()
    const { result } = await cliLogin(home, server.url, ["--name", "norefresh"])
    expect(result.code, result.stderr).toBe(0)
    const file = `${home}/credentials.json`
    const stored = JSON.parse(fs.readFileSync(file, "utf8")) as { credentials: Array<{ tokens: { refreshToken?: string } }> }
    delete stored.credentials[0]!.tokens.refreshToken
    fs.writeFileSync(file, JSON.stringify(stored), { mode: 0o600 })
    const refreshed = await run(["refresh", "norefresh"], cliEnv(home))
    expect(refreshed.code).toBe(1)
    expect(refreshed.stderr).toContain("gave no refresh token")
    expect(refreshed.stderr).toContain(`then run \`agent-auth mcp login ${server.url}\``)
  }, 90_000)

  it("packages/mcp/examples/runtime.ts connects with McpAuth.fetch to a server the CLI signed in to", async () => {
    const home = newHome()
    const { result } = await cliLogin(home, server.url)
    expect(result.code, result.stderr).toBe(0)
    const example = fileURLToPath(new URL("../packages/mcp/examples/run.mjs", import.meta.url))
    // Asynchronously: the servers live in this process.
    const exec = (env: Record<string, string>) =>
      finish(spawn(process.execPath, [example, server.url], { env, stdio: ["pipe", "pipe", "pipe"] }))
    const ran = await exec(cliEnv(home))
    expect(ran.code, `${ran.stdout}\n${ran.stderr}`).toBe(0)
    expect(ran.stdout).toBe(`tools: echo, admin\n[{"type":"text","text":"hello"}]\n`)
    // Without a login it says what to run.
    const none = await exec(cliEnv(newHome()))
    expect(none.code).not.toBe(0)
    // runMain reports the failure through Effect's logger (stdout or stderr, by Node's console).
    expect(`${none.stdout}${none.stderr}`).toContain(`agent-auth mcp login ${server.url}`)
  }, 90_000)

  it("a repeated --scope: the authorization request asks for both, the stored login holds both", async () => {
    const home = newHome()
    const seenBefore = issuer.seen.length
    const { result, shown } = await cliLogin(home, server.url, ["--scope", "mcp:read", "--scope", "mcp:write"])
    expect(result.code, result.stderr).toBe(0)
    // At the authorization server: the authorization request, as it arrived.
    const authorization = issuer.seen.slice(seenBefore).filter((s) => s.route === "authorization")
    expect(authorization).toHaveLength(1)
    expect(String(authorization[0]!.scope).split(" ").sort()).toEqual(["mcp:read", "mcp:write"])
    expect(new URL(String(shown.url)).searchParams.get("scope")).toBe("mcp:read mcp:write")
    expect(lines(result.stdout)[1]).toMatchObject({ event: "logged_in", scopes: ["mcp:read", "mcp:write"] })
    // Stored: the login's token holds both, and so do the server's record, list and status.
    const stored = JSON.parse(fs.readFileSync(`${home}/credentials.json`, "utf8")) as { credentials: Array<{ tokens: { scopes: Array<string> } }> }
    expect(stored.credentials[0]!.tokens.scopes).toEqual(["mcp:read", "mcp:write"])
    const name = McpServers.defaultName(server.url)
    expect(JSON.parse(fs.readFileSync(`${home}/mcp.json`, "utf8")).servers[name].scopes).toEqual(["mcp:read", "mcp:write"])
    const list = await run(["mcp", "list", "--json"], cliEnv(home))
    expect(list.code, list.stderr).toBe(0)
    expect(JSON.parse(list.stdout)).toMatchObject({ servers: [{ name, scopes: ["mcp:read", "mcp:write"], state: "logged_in" }] })
    const status = await run(["status", name, "--json"], cliEnv(home))
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({
      providers: [{ provider: name, credentials: [{ source: "oauth", scopes: ["mcp:read", "mcp:write"] }] }]
    })
  }, 60_000)

  it("refusals are named: an http authorization server in the metadata, an unknown name", async () => {
    const bad = await startMcpServer({ issuer: issuer.issuer, authorizationServers: ["http://as.example.com"] })
    try {
      const home = newHome()
      const r = await run(["mcp", "login", bad.url, "--no-browser"], cliEnv(home))
      expect(r.code).toBe(3)
      expect(r.stderr).toContain(`"http://as.example.com" must use https`)
      expect(r.stderr).not.toContain("Internal error")
    } finally {
      await bad.close()
    }
  })
})

describe("a failed MCP login names `agent-auth mcp login URL`, never `agent-auth login`", () => {
  const scopes = ["--scope", "mcp:read", "--scope", "mcp:write"]
  const again = () => `agent-auth mcp login ${server.url} --scope mcp:read --scope mcp:write`

  it("denied: the authorization server answers error=access_denied on the callback", async () => {
    const home = newHome()
    const child = start(["mcp", "login", server.url, "--no-browser", "--json", ...scopes], cliEnv(home))
    const done = finish(child)
    const shown = await nextEvent(child, "authorization_url")
    // The person cancels at oidc-provider's login page: it redirects to our callback with error=access_denied.
    const browser = new Browser()
    const first = await browser.request(String(shown.url))
    const interaction = new URL(first.headers.get("location") ?? "", String(shown.url))
    const visit = await browser.navigate(`${interaction.href}/abort`)
    expect(visit.trail.at(-1)).toContain("error=access_denied")
    expect(visit.body).not.toContain("agent-auth login")
    const result = await done
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("refused the authorization (access_denied")
    expect(result.stderr).toContain(`Run \`${again()}\` to try again.`)
    expect(result.stderr).not.toContain("agent-auth login ")
    // The failed login left no server record behind.
    expect(JSON.parse(fs.readFileSync(`${home}/mcp.json`, "utf8")).servers).toEqual({})
  }, 60_000)

  it("a callback with a wrong state is refused and the login waits on; then --timeout ends it", async () => {
    const home = newHome()
    const started = Date.now()
    const codeGrants = issuer.grants("authorization_code")
    const child = start(["mcp", "login", server.url, "--no-browser", "--json", "--timeout", "3s", ...scopes], cliEnv(home))
    const done = finish(child)
    const shown = await nextEvent(child, "authorization_url")
    const authorization = new URL(String(shown.url))
    const callback = new URL(authorization.searchParams.get("redirect_uri") ?? "")
    callback.searchParams.set("code", "forged-code")
    callback.searchParams.set("state", "not-the-state-this-login-sent")
    callback.searchParams.set("iss", issuer.issuer)
    const forged = await fetch(callback)
    expect(forged.status).toBe(400)
    expect(await forged.text()).toContain("state mismatch")
    const result = await done
    expect(result.code).toBe(1)
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000)
    expect(result.stderr).toContain("timed out after 3 s")
    expect(result.stderr).toContain(`run \`${again()}\` again`)
    expect(result.stderr).not.toContain("agent-auth login ")
    // The forged code never reached the token endpoint.
    expect(issuer.grants("authorization_code")).toBe(codeGrants)
  }, 60_000)
})
