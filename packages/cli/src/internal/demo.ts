/**
 * The `demo` provider: an embedded authorization server (the fake one from
 * `@agent-auth/testing`), so every command can be tried with no network and no account.
 *
 * Each CLI command is its own process, so the server is started by each command that
 * talks to it, on the demo issuer's fixed port, and its state (signing keys, grants,
 * tokens) is kept in `$AGENT_AUTH_HOME/demo-server.json` between commands: restored at
 * start, written after every change and when the command ends. If the port is taken
 * (another agent-auth process is serving the demo), the command uses that server.
 */
import { AuthConfig, BrowserLauncher, ProviderRegistry, TokenStore } from "@agent-auth/core"
import type { FakeAuthServer } from "@agent-auth/testing"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { NodeFiles } from "@agent-auth/node"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { demoProvider } from "./demoProvider.js"

export const STATE_FILE = "demo-server.json"

// ---------------------------------------------------------------------------------------
// Which commands need the server

/** Options that take a value, so the value is not mistaken for a command or a provider. */
const VALUE_OPTIONS = new Set(["--account", "--port", "--timeout", "--from", "--home", "--log-level", "--completions"])

/** The positional words of a command line (`login --port 8080 demo` → `login`, `demo`). */
const positionals = (argv: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") {
      out.push(...argv.slice(i + 1))
      break
    }
    if (a.startsWith("-")) {
      if (VALUE_OPTIONS.has(a)) i++
      continue
    }
    out.push(a)
  }
  return out
}

/**
 * Whether a command line may talk to the demo server: `login|token|refresh|logout demo`
 * always; `logout --all` only when a demo login is stored (checked by `demoServer`). Not
 * `status`, which reads only local state, nor anything else: other commands pay nothing.
 */
export const demoServerNeed = (argv: ReadonlyArray<string>): "yes" | "if-stored" | "no" => {
  const [command, provider] = positionals(argv)
  if (command === undefined || !["login", "token", "refresh", "logout"].includes(command)) return "no"
  if (provider === "demo") return "yes"
  return command === "logout" && argv.includes("--all") ? "if-stored" : "no"
}

// ---------------------------------------------------------------------------------------
// The state file


/** The saved state: None when there is none; an unparsable file is set aside (and reported) rather than lost. */
const readState = (file: string): Effect.Effect<Option.Option<unknown>> =>
  Effect.tryPromise(() => fs.readFile(file, "utf8")).pipe(
    Effect.flatMap((text) =>
      Effect.try(() => JSON.parse(text) as unknown).pipe(
        Effect.map(Option.some),
        Effect.catchAll(() => Effect.as(setAside(file, "it is not JSON"), Option.none()))
      )
    ),
    Effect.catchAll((e) =>
      (e.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT"
        ? Effect.succeed(Option.none())
        : Effect.as(Effect.logWarning(`Could not read the demo server's state ${file}: ${describe(e.error)}; starting afresh.`), Option.none())
    )
  )

const setAside = (file: string, reason: string) =>
  Effect.tryPromise(() => fs.rename(file, `${file}.unusable`)).pipe(
    Effect.ignore,
    Effect.zipRight(Effect.logWarning(
      `The demo server's saved state ${file} could not be used (${reason}); it was moved to ${file}.unusable ` +
        "and a fresh demo server started: demo logins made before it need `agent-auth login demo` again."
    ))
  )

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The port of a demo issuer the embedded server can stand for: plain http on 127.0.0.1, explicit port, no path. */
const servablePort = (issuer: string | undefined): number | undefined => {
  if (issuer === undefined) return undefined
  try {
    const url = new URL(issuer)
    const ok = url.protocol === "http:" && url.hostname === "127.0.0.1" && url.port !== "" && (url.pathname === "/" || url.pathname === "")
    return ok ? Number(url.port) : undefined
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------
// The server

/**
 * The embedded demo server for the length of one command, when `argv` needs it (else an
 * empty layer). It serves on the port of the `demo` issuer as configured (config.json may
 * point `providers.demo.issuer` at another loopback port, or at a real server: then
 * nothing is started). It never fails: a command that cannot reach a demo server reports
 * that itself, as a discovery error naming the issuer.
 */
export const demoServer = (
  argv: ReadonlyArray<string>
): Layer.Layer<never, never, AuthConfig.AuthConfig | ProviderRegistry.ProviderRegistry | TokenStore.TokenStore> => {
  const need = demoServerNeed(argv)
  if (need === "no") return Layer.empty
  return Layer.scopedDiscard(
    Effect.gen(function*() {
      if (need === "if-stored") {
        const store = yield* TokenStore.TokenStore
        const stored = yield* store.list("demo").pipe(Effect.orElseSucceed(() => []))
        if (stored.length === 0) return
      }
      const config = yield* AuthConfig.AuthConfig
      const registry = yield* ProviderRegistry.ProviderRegistry
      const provider = yield* Effect.option(registry.get("demo"))
      if (Option.isNone(provider)) return
      const port = servablePort(provider.value.issuer)
      if (port === undefined) {
        return yield* Effect.logDebug(`demo: the demo issuer is ${provider.value.issuer}; not starting the embedded server`)
      }
      const file = path.join(config.home, STATE_FILE)
      const saved = yield* readState(file)
      const persist = (snapshot: unknown) =>
        NodeFiles.writeText(file, JSON.stringify(snapshot)).pipe(
          Effect.provide(NodeFileSystem.layer),
          Effect.catchAll((e) => Effect.logWarning(`Could not save the demo server's state to ${file}: ${e.message}`))
        )
      // Loaded only here: the server (and its HTTP stack) costs start-up time every other command need not pay.
      const Fake: typeof FakeAuthServer = yield* Effect.promise(() => import("@agent-auth/testing")).pipe(
        Effect.map((m) => m.FakeAuthServer)
      )
      const started = yield* Effect.either(Fake.make({
        port,
        clients: [{ clientId: provider.value.clientId ?? demoProvider.clientId! }],
        ...(Option.isSome(saved) ? { restore: saved.value } : {}),
        persist
      }))
      if (started._tag === "Left") {
        const code = (started.left.cause as NodeJS.ErrnoException | undefined)?.code
        return yield* code === "EADDRINUSE"
          ? Effect.logDebug(`demo: port ${port} is taken; using the demo server another agent-auth process is running there`)
          : Effect.logWarning(`Could not start the demo server on 127.0.0.1:${port}: ${describe(started.left.cause)}`)
      }
      const server = started.right
      if (server.restoreProblem !== undefined) yield* setAside(file, server.restoreProblem)
      yield* Effect.logDebug(`demo: serving ${server.issuer}${server.restored ? `, state restored from ${file}` : ""}`)
    })
  )
}

// ---------------------------------------------------------------------------------------
// The browser

const isLoopback = (url: URL): boolean =>
  url.protocol === "http:" && (url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]")

/**
 * The demo's "browser": it does what a person's browser would, with no person. It GETs the
 * authorization URL (the demo server approves at once and redirects), then GETs the
 * redirect, which is the login's own loopback callback, so `login demo` completes by
 * itself. It goes nowhere but loopback. When it cannot finish, it tells the waiting login
 * through the callback (`error=…`, as an authorization server would), so the login fails
 * at once with the reason instead of waiting out its timeout.
 */
export const demoBrowserLauncher: Layer.Layer<BrowserLauncher.BrowserLauncher> = Layer.succeed(BrowserLauncher.BrowserLauncher, {
  open: (url) =>
    Effect.tryPromise({
      try: () => followSignIn(url),
      catch: describe
    }).pipe(
      Effect.as<BrowserLauncher.OpenResult>({ _tag: "Opened" }),
      Effect.catchAll((reason) =>
        Effect.promise(() => reportFailure(url, reason)).pipe(
          Effect.as<BrowserLauncher.OpenResult>({ _tag: "Skipped", reason: `the demo browser could not sign in: ${reason}` })
        )
      )
    )
})

const get = async (url: URL): Promise<Response> => {
  if (!isLoopback(url)) throw new Error(`refusing to leave loopback (${url.origin})`)
  const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(10_000) })
  await response.arrayBuffer()
  return response
}

const followSignIn = async (authorizationUrl: string): Promise<void> => {
  const authorize = await get(new URL(authorizationUrl))
  const location = authorize.headers.get("location")
  if (authorize.status < 300 || authorize.status >= 400 || location === null) {
    throw new Error(`the demo server answered ${authorize.status} instead of redirecting back`)
  }
  const callback = await get(new URL(location, authorizationUrl))
  if (callback.status !== 200) throw new Error(`the login's callback answered ${callback.status}`)
}

/** Best effort: an error redirect to the login's callback, carrying its state, so the login ends now. */
const reportFailure = async (authorizationUrl: string, reason: string): Promise<void> => {
  try {
    const auth = new URL(authorizationUrl)
    const redirectUri = auth.searchParams.get("redirect_uri")
    const state = auth.searchParams.get("state")
    if (redirectUri === null || state === null) return
    const callback = new URL(redirectUri)
    callback.searchParams.set("error", "server_error")
    callback.searchParams.set("error_description", `the demo browser could not sign in: ${reason}`)
    callback.searchParams.set("state", state)
    // The demo issuer is the authorization URL's origin; without `iss` the login would reject the answer as forged.
    callback.searchParams.set("iss", auth.origin)
    await get(callback)
  } catch {
    // Nothing more to do: the login waits for its timeout, as with a real browser that never came back.
  }
}
