/**
 * `agent-auth mcp login|list|logout`: MCP servers (@agent-auth/mcp). A server's login is a
 * provider of kind `mcp` named after it, so `token`, `status`, `refresh` and `logout` take
 * its name or its URL too (main.ts gives the registry the MCP servers as a ProviderSource).
 */
import { Args, Command, Options } from "@effect/cli"
import { BrowserLauncher, ConfigInvalid, type Domain, type PkceFlow, ProviderRegistry, Revoker, TokenStore } from "@agent-auth/core"
import { McpLogin, McpServers } from "@agent-auth/mcp"
import { Clock, DateTime, Effect, Either, Option } from "effect"
import { json, optionValue, parseDuration, verbose } from "../internal/args.js"
import { bold, dim, event, expiry, green, link, red, say, stdinIsTty, withSpinner, yellow } from "../internal/output.js"
import { pastedLines } from "../internal/stdin.js"

/** What a browser login says as it goes (as `login` does), on stderr; `--json` events on stdout. */
const printer = (url: string, asJson: boolean) => (e: PkceFlow.LoginEvent): Effect.Effect<void> => {
  switch (e._tag) {
    case "AuthorizationUrl":
      return Effect.zipRight(
        asJson ? event({ event: "authorization_url", url: e.url, redirect_uri: e.redirectUri }) : Effect.void,
        say(`Open this URL to sign in to the MCP server ${url}:\n\n  ${link(e.url)}\n`)
      )
    case "BrowserOpened":
      return say("Opened your browser; waiting for the sign-in to finish…")
    case "BrowserSkipped":
      return say(`Not opening a browser (${e.reason}); open the URL above yourself.`)
    case "PasteOnly":
      return say(`${e.reason}\nAfter signing in, paste the URL your browser was sent to.`)
    case "PasteRejected":
      return say(`That does not complete this login (${e.reason}). Paste the whole URL from the address bar.`)
    case "DeviceCode":
      return Effect.void
  }
}

const mcpLogin = Command.make(
  "login",
  {
    url: Args.text({ name: "url" }),
    name: Options.text("name").pipe(Options.optional, Options.withDescription("store the login under this name (default: the URL's host)")),
    scope: Options.text("scope").pipe(Options.repeated, Options.withDescription("a scope to ask for (repeat for several)")),
    clientId: Options.text("client-id").pipe(Options.optional, Options.withDescription("a client registered at the server beforehand")),
    noBrowser: Options.boolean("no-browser").pipe(Options.withDescription("print the URL and do not open a browser")),
    port: Options.integer("port").pipe(Options.optional, Options.withDescription("loopback port for the redirect")),
    timeout: Options.text("timeout").pipe(Options.optional, Options.withDescription("how long to wait, e.g. 5m")),
    json,
    verbose
  },
  (args) =>
    Effect.gen(function*() {
      const timeout = Option.isSome(args.timeout) ? parseDuration(args.timeout.value) : Either.right(undefined)
      if (Either.isLeft(timeout)) return yield* new ConfigInvalid({ source: "command line", field: "--timeout", reason: timeout.left })
      // The paste prompt exists only on a terminal; a closed or redirected stdin never ends a login.
      const pasted = stdinIsTty() ? yield* pastedLines("Or paste the redirect URL (or code#state) here: ") : undefined
      const run = McpLogin.login(
        { url: args.url, name: optionValue(args.name), scopes: args.scope, clientId: optionValue(args.clientId) },
        { onEvent: printer(args.url, args.json), pasted, port: optionValue(args.port), timeout: timeout.right }
      )
      const Layers = yield* Effect.promise(() => import("../internal/layers.js"))
      const { credential, name, record } = yield* (pasted === undefined ? withSpinner("waiting for the browser…", run) : run).pipe(
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
).pipe(Command.withDescription("sign in to an MCP server (discovery, client registration, PKCE, resource)"))

const mcpList = Command.make("list", { json, verbose }, (args) =>
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
  }).pipe(Effect.provide(McpServers.layerFile))).pipe(
    Command.withDescription("list MCP servers: URL, issuer, client, scopes, login state")
  )

const mcpLogout = Command.make("logout", { server: Args.text({ name: "name|url" }), json, verbose }, (args) =>
  Effect.gen(function*() {
    const registry = yield* ProviderRegistry.ProviderRegistry
    const store = yield* TokenStore.TokenStore
    const revoker = yield* Revoker.Revoker
    const p = yield* registry.get(args.server)
    if (p.kind !== "mcp") {
      return yield* new ConfigInvalid({ source: "command line", field: "name|url", reason: `${p.id} is not an MCP server; \`agent-auth logout ${p.id}\` logs out of it` })
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
  })).pipe(Command.withDescription("revoke and delete an MCP server's login (its client registration is kept)"))

export const mcp = Command.make("mcp").pipe(
  Command.withDescription("MCP servers: sign in to the tools an agent calls"),
  Command.withSubcommands([mcpLogin, mcpList, mcpLogout])
)
