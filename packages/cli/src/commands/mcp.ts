/**
 * `agent-auth mcp login|list|logout`: MCP servers (@agent-auth/mcp). A server's login is a
 * provider of kind `mcp` named after it, so `token`, `status`, `refresh` and `logout` take
 * its name or its URL too (main.ts gives the registry the MCP servers as a ProviderSource).
 */
import { BrowserLauncher, type Domain, PortUnavailable, ProviderRegistry, Revoker, TokenStore, UsageError } from "@agent-auth/core"
import { McpLogin, McpServers } from "@agent-auth/mcp"
import { Clock, DateTime, Effect, Either } from "effect"
import { json, verbose } from "../internal/args.js"
import * as C from "../internal/command.js"
import { bold, dim, event, expiry, green, red, say, stdinIsTty, withSpinner, yellow } from "../internal/output.js"
import { pastedLines } from "../internal/stdin.js"
import { writableStore } from "../internal/writable.js"
import { loginPrinter } from "./login.js"

/** An MCP server's URL as typed: http(s) (McpLogin says which http ones it accepts). */
const serverUrl = (text: string): Either.Either<string, string> => {
  const url = URL.canParse(text) ? new URL(text) : undefined
  return url !== undefined && (url.protocol === "https:" || url.protocol === "http:")
    ? Either.right(text)
    : Either.left("an MCP server is named by its URL, https://…")
}

/** One word (a scope, a client id): never empty, no whitespace or control character. */
const word = (what: string) => (text: string): Either.Either<string, string> =>
  /^[^\s\p{C}]+$/u.test(text) ? Either.right(text) : Either.left(`${what} is one word`)

const mcpLogin = C.make({
  name: "login",
  summary: "sign in to an MCP server (discovery, client registration, PKCE, resource)",
  description:
    "Finds the server's authorization server (its protected resource metadata), registers a client there when none is known (or uses --client-id), and signs in in your browser with PKCE, for this server only (the resource indicator). The login is stored under a name (default: the URL's host), which `token`, `status`, `refresh` and `logout` take, as they take the URL.",
  args: {
    url: C.arg("url", { description: "the MCP server's URL, as its client connects to it", parse: serverUrl })
  },
  flags: {
    name: C.value("name", {
      description: "store the login under this name (a-z, 0-9, - and _; default: the URL's host)",
      placeholder: "NAME",
      parse: C.text
    }),
    scope: C.values("scope", { description: "a scope to ask for; without one, the server's", placeholder: "SCOPE", parse: word("a scope") }),
    clientId: C.value("client-id", {
      description: "a client registered at the authorization server beforehand (else one is registered)",
      placeholder: "ID",
      parse: word("a client id")
    }),
    noBrowser: C.boolean("no-browser", "print the sign-in URL and do not open a browser"),
    port: C.value("port", {
      description: "the loopback port the browser is sent back to (0–65535; default: any free one)",
      placeholder: "N",
      parse: C.port
    }),
    timeout: C.value("timeout", {
      description: "how long to wait for the sign-in, e.g. 90s, 5m (default 5m)",
      placeholder: "DURATION",
      parse: C.duration
    }),
    json,
    verbose
  },
  examples: [
    { command: "agent-auth mcp login https://mcp.example.com/mcp", does: "sign in to an MCP server in the browser" },
    {
      command: "agent-auth mcp login https://mcp.example.com/mcp --name tools --scope files:read --scope files:write",
      does: "store it as `tools`, asking for two scopes"
    }
  ],
  run: (args) =>
    Effect.gen(function*() {
      // A login whose tokens could not be saved is a sign-in for nothing: find out first.
      yield* writableStore
      // The paste prompt exists only on a terminal; a closed or redirected stdin never ends a login.
      const pasted = stdinIsTty() ? yield* pastedLines("Or paste the redirect URL (or code#state) here: ") : undefined
      const run = McpLogin.login(
        { url: args.url, name: args.name, scopes: args.scope, clientId: args.clientId },
        { onEvent: loginPrinter(`the MCP server ${args.url}`, args.json), pasted, port: args.port, timeout: args.timeout }
      )
      const Layers = yield* Effect.promise(() => import("../internal/layers.js"))
      const { credential, name, record } = yield* (pasted === undefined ? withSpinner("waiting for the browser…", run) : run).pipe(
        // A busy port the person chose with --port: another port will do.
        Effect.catchTag("PortUnavailable", (e) =>
          Effect.fail(args.port === undefined ? e : new PortUnavailable({ ports: e.ports, provider: e.provider, chosen: true }))),
        Effect.provide(Layers.callbackServer),
        Effect.provide(args.noBrowser ? BrowserLauncher.layerNone("--no-browser") : Layers.browserLauncher)
      )
      const store = yield* TokenStore.TokenStore
      const exp = credential.tokens.expiresAt
      if (args.json) {
        yield* event({
          event: "logged_in",
          provider: name,
          account: credential.account,
          url: record.url,
          issuer: record.issuer,
          resource: record.resource,
          client_id: record.clientId,
          scopes: credential.tokens.scopes,
          expires_at: exp === undefined ? null : DateTime.formatIso(exp)
        })
      }
      yield* say(
        `Logged in to the MCP server ${record.url} as ${bold(name)} (issuer ${record.issuer}).` +
          (exp === undefined ? "" : ` The access token expires ${yield* expiry(exp)}.`) +
          `\nStored in ${store.location}; \`agent-auth token ${name}\` prints the token.`
      )
    }).pipe(Effect.scoped, Effect.provide(McpServers.layerFile))
})

const mcpList = C.make({
  name: "list",
  summary: "list MCP servers: URL, issuer, client, scopes, login state",
  description:
    "Lists the MCP servers signed in to (mcp.json in the agent-auth home): each one's URL, authorization server, client (registered dynamically, a metadata document, or pre-registered), scopes, and whether it is logged in. Tokens are never shown.",
  flags: { json, verbose },
  examples: [
    { command: "agent-auth mcp list", does: "every MCP server and its login state" },
    { command: "agent-auth mcp list --json", does: "the same as JSON, for scripts" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const servers = yield* McpServers.McpServers
      const store = yield* TokenStore.TokenStore
      const file = yield* servers.read
      const now = yield* Clock.currentTimeMillis
      const out: Array<Record<string, unknown>> = []
      const entries = Object.entries(file.servers)
      if (entries.length === 0) yield* say("No MCP servers. `agent-auth mcp login <url>` signs in to one.")
      for (const [name, s] of entries) {
        const logins = (yield* store.list(name)).filter((c): c is Domain.OAuthCredential => c._tag === "OAuthCredential")
        const login = logins[0]
        const exp = login?.tokens.expiresAt
        const state = login === undefined
          ? "logged_out"
          : exp !== undefined && DateTime.toEpochMillis(exp) <= now && login.tokens.refreshToken === undefined
          ? "expired"
          : "logged_in"
        yield* say(`${bold(name)}  ${s.url}`)
        yield* say(`  - Issuer: ${s.issuer}`)
        yield* say(`  - Client: ${s.clientId} (${s.client === "dynamic" ? "registered dynamically" : s.client === "metadata_document" ? "metadata document" : "pre-registered"}, ${s.tokenEndpointAuthMethod})`)
        yield* say(`  - Scopes: ${(login?.tokens.scopes ?? s.scopes).join(" ") || dim("none")}`)
        yield* say(`  - ${state === "logged_in" ? green("✓ logged in") : state === "expired" ? yellow("expired") : red("X not logged in")}` +
          (exp === undefined || login === undefined ? "" : `, token expires ${yield* expiry(exp)}`))
        out.push({
          name,
          url: s.url,
          issuer: s.issuer,
          resource: s.resource,
          client_id: s.clientId,
          client: s.client,
          token_endpoint_auth_method: s.tokenEndpointAuthMethod,
          scopes: login?.tokens.scopes ?? s.scopes,
          state,
          expires_at: exp === undefined ? null : DateTime.formatIso(exp)
        })
      }
      if (args.json) yield* event({ servers: out })
    }).pipe(Effect.provide(McpServers.layerFile))
})

const mcpLogout = C.make({
  name: "logout",
  summary: "revoke and delete an MCP server's login (its client registration is kept)",
  description:
    "Revokes the server's login at its authorization server where it can, deletes it from the store even when revocation fails, and says which happened. The client registration stays in mcp.json, so signing in again does not register anew.",
  args: {
    server: C.arg("name|url", {
      description: "the server's name (`agent-auth mcp list`) or its URL",
      completion: C.complete.provider,
      parse: C.providerName
    })
  },
  flags: { json, verbose },
  examples: [
    { command: "agent-auth mcp logout tools", does: "log out of the MCP server stored as `tools`" },
    { command: "agent-auth mcp logout https://mcp.example.com/mcp", does: "the same, naming it by its URL" }
  ],
  run: (args) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry.ProviderRegistry
      const store = yield* TokenStore.TokenStore
      const revoker = yield* Revoker.Revoker
      const p = yield* registry.get(args.server)
      if (p.kind !== "mcp") {
        return yield* new UsageError({ source: "command line", reason: `${p.id} is not an MCP server; \`agent-auth logout ${p.id}\` logs out of it.` })
      }
      const logins = yield* store.list(p.id)
      if (logins.length === 0) yield* say(`Not logged in to ${p.id} (${p.url}); nothing to log out of.`)
      for (const c of logins) {
        const { removed, revocation } = yield* revoker.logout({ provider: c.provider, account: c.account })
        yield* say(
          revocation._tag === "Revoked"
            ? `Revoked the login for ${p.id} at its authorization server and deleted it from ${store.location}.`
            : revocation._tag === "Failed"
            ? yellow(`Deleted ${p.id} from ${store.location}, but revocation failed (${revocation.reason}); the token may stay valid until it expires.`)
            : `Deleted ${p.id} from ${store.location}.`
        )
        if (args.json) {
          yield* event({ event: "logged_out", provider: p.id, url: p.url, revocation: revocation._tag, removed })
        }
      }
      yield* say(dim(`The client registration is kept: \`agent-auth mcp login ${p.url}\` signs in again without registering anew.`))
    })
})

export const mcp = C.group({
  name: "mcp",
  summary: "MCP servers: sign in to the tools an agent calls",
  description:
    "Signs in to MCP servers (the Model Context Protocol's authorization: discovery, client registration, PKCE, a token for that server only). A server's login is then a provider like any other: `agent-auth token NAME` (or its URL) prints a fresh token.",
  commands: [mcpLogin, mcpList, mcpLogout],
  examples: [
    { command: "agent-auth mcp login https://mcp.example.com/mcp", does: "sign in to an MCP server" },
    { command: "agent-auth token https://mcp.example.com/mcp", does: "a fresh access token for it, for scripts" }
  ]
})
