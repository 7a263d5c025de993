/**
 * The `demo` provider: an embedded authorization server (the fake one from
 * `@agent-auth/testing`), so every command can be tried with no network and no account.
 *
 * Each CLI command is its own process, so the server is started by each command that
 * talks to it, on the demo issuer's fixed port, and its state (signing keys, grants,
 * tokens) is kept in `$AGENT_AUTH_HOME/demo-server.json` between commands: restored at
 * start, written after every change and when the command ends. If the port is taken by
 * another agent-auth process serving the same home, the command shares that server; by
 * one serving another home, it fails at once (see `demoServer`).
 */
import { AuthConfig, BrowserLauncher, PortUnavailable, ProviderRegistry, TokenStore } from "@agent-auth/core"
import type { FakeAuthServer } from "@agent-auth/testing"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { NodeFiles } from "@agent-auth/node"
import { Effect, Layer, Option } from "effect"
import type { Scope } from "effect"
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

/** The discovery field in which the embedded server names the home it serves: its state file's absolute path. */
export const SERVES_FIELD = "agent_auth_demo_state"

/** What answers on the demo's port: an embedded demo server (and its state file), something else, or nothing. */
type Holder =
  | { readonly _tag: "Demo"; readonly state: string }
  | { readonly _tag: "Other" }
  | { readonly _tag: "Nothing" }

/** Asks the port's discovery document who serves there (loopback only, 2 s at most). */
const probe = (port: number): Effect.Effect<Holder> =>
  Effect.promise(async (): Promise<Holder> => {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`, {
        redirect: "manual",
        signal: AbortSignal.timeout(2000)
      })
      const body = response.ok ? ((await response.json().catch(() => undefined)) as Record<string, unknown> | undefined) : undefined
      const state = body?.[SERVES_FIELD]
      return typeof state === "string" ? { _tag: "Demo", state } : { _tag: "Other" }
    } catch (e) {
      const code = ((e as { cause?: NodeJS.ErrnoException }).cause)?.code
      return code === "ECONNREFUSED" ? { _tag: "Nothing" } : { _tag: "Other" }
    }
  })

/** The home's state file, by its real path when the home exists (two spellings of one home are one home). */
const stateFileOf = (home: string): Effect.Effect<string> =>
  Effect.promise(() => fs.realpath(home).catch(() => path.resolve(home))).pipe(Effect.map((dir) => path.join(dir, STATE_FILE)))

/** How often a command sharing another process's server checks it is still there. */
const WATCH_EVERY = "250 millis"

/**
 * The embedded demo server for the length of one command, when `argv` needs it (else an
 * empty layer). It serves on the port of the `demo` issuer as configured (config.json may
 * point `providers.demo.issuer` at another loopback port, or at a real server: then
 * nothing is started). Its discovery document names the state file it serves
 * (`agent_auth_demo_state`), so a command that finds the port taken knows by whom:
 * - the demo server of this same home (another agent-auth command running now): it is
 *   shared, as its state is this home's file; and watched, so that when its process
 *   ends this command serves the same state itself, and a login in progress goes on;
 * - the demo server of another home: `PortUnavailable` at once, naming it (its logins
 *   would be stored in that home's state, and end when that process does);
 * - anything else: the command goes on and reports what it meets there, as a discovery
 *   error naming the issuer.
 */
export const demoServer = (
  argv: ReadonlyArray<string>
): Layer.Layer<never, PortUnavailable, AuthConfig.AuthConfig | ProviderRegistry.ProviderRegistry | TokenStore.TokenStore> => {
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
      const file = yield* stateFileOf(config.home)
      const clientId = provider.value.clientId ?? demoProvider.clientId!
      const first = yield* start(port, file, clientId)
      if (first !== "PortTaken") return
      const holder = yield* probe(port)
      if (holder._tag === "Demo" && holder.state !== file) {
        return yield* new PortUnavailable({
          ports: [port],
          provider: "demo",
          heldBy: holder.state,
          configPath: path.join(config.home, "config.json")
        })
      }
      if (holder._tag === "Other") {
        return yield* Effect.logDebug(`demo: port ${port} is taken by something that is not an agent-auth demo server`)
      }
      yield* Effect.logDebug(`demo: port ${port} is served by another agent-auth process of this home; sharing it`)
      yield* Effect.forkScoped(takeOverWhenGone(port, file, clientId))
    })
  )
}

/**
 * Shares a same-home server until it goes away, then serves its state here (restored from
 * the file it saved when it closed), so requests of this command after that still find a
 * server. Ends when this command's own server is up, or the port goes to something else.
 */
const takeOverWhenGone = (port: number, file: string, clientId: string): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    while (true) {
      yield* Effect.sleep(WATCH_EVERY)
      const holder = yield* probe(port)
      if (holder._tag === "Demo" && holder.state === file) continue
      if (holder._tag !== "Nothing") {
        return yield* Effect.logWarning(`The demo server this command shared on port ${port} is gone, and something else answers there now.`)
      }
      // Another sharer may win the port first: then it is shared in turn.
      const started = yield* start(port, file, clientId)
      if (started === "Started") return yield* Effect.logDebug(`demo: the shared server ended; serving ${file} here`)
      if (started === "Failed") return
    }
  })

/** Starts the embedded server on `port`, serving the state in `file`, in the current scope. */
const start = (port: number, file: string, clientId: string): Effect.Effect<"Started" | "PortTaken" | "Failed", never, Scope.Scope> =>
  Effect.gen(function*() {
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
      clients: [{ clientId }],
      ...(Option.isSome(saved) ? { restore: saved.value } : {}),
      persist,
      discoveryExtra: { [SERVES_FIELD]: file }
    }))
    if (started._tag === "Left") {
      const code = (started.left.cause as NodeJS.ErrnoException | undefined)?.code
      if (code === "EADDRINUSE") return "PortTaken" as const
      yield* Effect.logWarning(`Could not start the demo server on 127.0.0.1:${port}: ${describe(started.left.cause)}`)
      return "Failed" as const
    }
    const server = started.right
    if (server.restoreProblem !== undefined) yield* setAside(file, server.restoreProblem)
    yield* Effect.logDebug(`demo: serving ${server.issuer}${server.restored ? `, state restored from ${file}` : ""}`)
    return "Started" as const
  })

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
