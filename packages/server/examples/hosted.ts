/**
 * An example hosted service: users sign in to providers through `@agent-auth/server`'s
 * routes, and a page shows each user's logins. Run it with `pnpm example:hosted`.
 *
 * - Tokens and pending logins in SQLite (`$AGENT_AUTH_HOME/credentials.db`) by default,
 *   in Postgres when `AGENT_AUTH_DATABASE_URL=postgres://…` is set; encrypted with
 *   `AGENT_AUTH_ENCRYPTION_KEY` (32 bytes, base64; required).
 * - Providers from `$AGENT_AUTH_HOME/config.json`. When it names no OIDC provider, the
 *   example offers `demo`: `@agent-auth/testing`'s fake authorization server, started in
 *   this process on 127.0.0.1 (it signs everyone in as a test user at once; for trying the
 *   example only).
 * - Listens on 127.0.0.1:`PORT` (default 8787; 0 for any free port) and prints
 *   `listening on URL`. `AGENT_AUTH_PUBLIC_URL` is the origin browsers use (the load
 *   balancer's, the same on every replica); by default the address it listens on.
 *
 * WHO THE USER IS: this example trusts a cookie the user sets by typing a name (or an
 * `x-example-user` header). That is NOT authentication: a real service names the
 * principal from its own sign-in (a verified session), in `principal` below.
 */
import { AuthConfig, JwtVerifier, Provider, ProviderRegistry, SecureRandom } from "@agent-auth/core"
import { HostedLogin, PendingLogins, PrincipalStores } from "@agent-auth/server"
import { SecretBox, SqlStoreConfig, SqlTokenStore } from "@agent-auth/sql"
import { FakeAuthServer } from "@agent-auth/testing"
import {
  FetchHttpClient,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeFileSystem, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Console, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Http from "node:http"

const USER_COOKIE = "example_user"

/** The example's stand-in for authentication: see the module comment. */
const principal = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.succeed(Option.fromNullable(request.headers["x-example-user"] ?? request.cookies[USER_COOKIE]))

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

const layout = (body: string) =>
  HttpServerResponse.html(`<!doctype html>
<html><head><meta charset="utf-8"><title>agent-auth hosted example</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:48rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}form{display:inline}</style></head>
<body>${body}</body></html>`)

/** The providers a person can sign in to here: those with an issuer from config.json. */
const loginProviders = Effect.map(
  ProviderRegistry.ProviderRegistry,
  (registry) => registry.list.filter((p) => p.canLogin && p.kind === "oidc")
)

const signedOutPage = layout(`<h1>agent-auth hosted example</h1>
<p>Who are you? (This example takes your word for it; a real service uses its own sign-in.)</p>
<form method="post" action="/session"><input name="user" id="user" placeholder="your name" required>
<button type="submit">Continue</button></form>`)

const signedInPage = (user: string) =>
  Effect.gen(function*() {
    const logins = yield* HostedLogin.loginsOf(user)
    const providers = yield* loginProviders
    const rows = logins.map((l) =>
      `<tr><td>${escape(l.provider)}</td><td>${escape(l.account)}</td><td>${escape(l.email ?? "")}</td><td>${escape(l.expiresAt ?? "")}</td>
<td><form method="post" action="/auth/logout/${encodeURIComponent(l.provider)}?account=${encodeURIComponent(l.account)}"><button type="submit">Sign out</button></form></td></tr>`
    ).join("\n")
    const links = providers.map((p) => `<li><a href="/auth/login/${encodeURIComponent(p.id)}">Sign in to ${escape(p.displayName)}</a></li>`).join("\n")
    return yield* layout(`<h1>Signed in as <span id="principal">${escape(user)}</span></h1>
<h2>Your providers</h2>
${logins.length === 0 ? "<p id=\"none\">No provider yet.</p>" : `<table id="logins"><tr><th>Provider</th><th>Account</th><th>Email</th><th>Token expires</th><th></th></tr>\n${rows}</table>`}
<ul>${links}</ul>
<form method="post" action="/session/end"><button type="submit">Not ${escape(user)}?</button></form>`)
  })

const SessionForm = Schema.Struct({ user: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)) })

const pages = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, principal).pipe(
      Effect.flatMap(Option.match({ onNone: () => signedOutPage, onSome: signedInPage })),
      Effect.catchAll((e) => HttpServerResponse.text(`The page failed: ${e.message}`, { status: 500 }))
    )
  ),
  HttpRouter.post(
    "/session",
    HttpServerRequest.schemaBodyUrlParams(SessionForm).pipe(
      Effect.flatMap(({ user }) =>
        HttpServerResponse.redirect("/", { status: 303 }).pipe(
          HttpServerResponse.setCookie(USER_COOKIE, user, { httpOnly: true, sameSite: "lax", path: "/" })
        )
      ),
      Effect.catchAll(() => HttpServerResponse.text("A name, please.", { status: 400 }))
    )
  ),
  HttpRouter.post("/session/end", HttpServerResponse.redirect("/", { status: 303 }).pipe(HttpServerResponse.expireCookie(USER_COOKIE, { path: "/" })))
)

/** Tokens and pending logins in the database `AGENT_AUTH_DATABASE_URL` names (SQLite by default). */
const storage = Layer.unwrapEffect(Effect.gen(function*() {
  const settings = yield* AuthConfig.AuthConfig
  const url = yield* Config.option(Config.redacted("AGENT_AUTH_DATABASE_URL"))
  const kind = Option.exists(url, (u) => /^postgres(ql)?:\/\//i.test(Redacted.value(u))) ? "postgres" : "sqlite"
  const config = yield* SqlStoreConfig.fromEnv(kind, { home: settings.home, lockTimeout: settings.lockTimeout })
  yield* Console.log(`storing in ${config.location}`)
  const stores = SqlTokenStore.layerStores({ location: config.location, lockTimeout: config.lockTimeout })
  return Layer.mergeAll(PendingLogins.layerSql({ location: config.location }), PrincipalStores.layerSql.pipe(Layer.provide(stores))).pipe(
    Layer.provide(SqlStoreConfig.layerClient(config)),
    Layer.provide(SecretBox.layerConfig)
  )
}))

const server = Layer.unwrapEffect(Effect.gen(function*() {
  const address = yield* HttpServer.addressFormattedWith(Effect.succeed)
  const publicUrl = Option.getOrElse(yield* Config.option(Config.string("AGENT_AUTH_PUBLIC_URL")), () => address)
  const routes = HttpRouter.concat(pages, HostedLogin.router({ publicUrl, principal, returnTo: "/" }))
  // Said once requests are served: a test waits for this line.
  return HttpServer.serve(routes).pipe(Layer.tap(() => Console.log(`listening on ${address} (public URL ${publicUrl})`)))
}))

const port = Config.integer("PORT").pipe(Config.withDefault(8787))

/** The providers of config.json; or, when it names no OIDC provider, `demo` on a fake server in this process. */
const providers = Layer.unwrapScoped(Effect.gen(function*() {
  const settings = yield* AuthConfig.AuthConfig
  const configured = Object.values(settings.file.providers ?? {}).some((p) => (p.kind ?? "oidc") === "oidc")
  if (configured) return ProviderRegistry.layer
  const publicUrl = yield* Config.option(Config.string("AGENT_AUTH_PUBLIC_URL"))
  const fake = yield* FakeAuthServer.make({
    // Loopback redirects are accepted on any port; a public URL is registered exactly.
    clients: [{ clientId: FakeAuthServer.defaultClientId, redirectUris: Option.toArray(Option.map(publicUrl, (u) => `${u.replace(/\/+$/, "")}/auth/callback`)) }]
  })
  yield* Console.log(`no OIDC provider in config.json: offering "demo", a fake authorization server at ${fake.issuer}`)
  return ProviderRegistry.layerWith([
    Provider.ProviderConfig.make({
      ...Provider.oidcDefaults,
      id: "demo",
      displayName: "Demo (a fake authorization server in this process)",
      issuer: fake.issuer,
      clientId: fake.clientId,
      scopes: ["openid", "email", "offline_access"]
    })
  ])
}))

const settings = Layer.mergeAll(AuthConfig.layer, FetchHttpClient.layer).pipe(Layer.provideMerge(NodeFileSystem.layer))
const services = Layer.mergeAll(providers, JwtVerifier.layer, SecureRandom.layer).pipe(Layer.provideMerge(settings))

const main = Layer.unwrapEffect(Effect.map(port, (p) =>
  server.pipe(
    Layer.provide(storage),
    Layer.provide(services),
    Layer.provide(NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: p }))
  )))

/** A setting or database problem is reported in a sentence, with the CLI's exit code (2 for settings). */
const reported = Layer.launch(main).pipe(
  Effect.catchAll((e) =>
    Console.error(`hosted example: ${e.message}`).pipe(
      Effect.zipRight(Effect.sync(() => process.exit("exitCode" in e ? e.exitCode : 1)))
    )
  )
)

NodeRuntime.runMain(reported)
