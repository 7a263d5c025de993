/**
 * The system keychain, reached through `@napi-rs/keyring` in a child process.
 *
 * Why a child process: the native calls are synchronous (even `AsyncEntry`'s constructor
 * connects to D-Bus on the calling thread), and a session bus that accepts a connection but
 * never answers blocks them forever. In our own thread that would freeze the CLI or the
 * agent runtime; in a worker thread it would also hang the process at exit (Node joins its
 * workers, and a thread stuck in native code never returns). A child process can always be
 * killed. So every call goes to one long-lived helper process over its IPC channel (secrets
 * never on a command line), each with a time limit; a call that runs out kills the helper
 * and fails with `StoreError` naming the keychain. The next call starts a new helper.
 *
 * The helper's first call is the probe: connecting to the keychain must succeed within
 * `probeTimeout` (3 s), counted once the helper has started and loaded the module (which
 * has a wider limit of its own: a loaded machine can take seconds to start a process).
 * A command-line program sets a `deadline` instead, counted from its own start (the CLI:
 * 2.5 s), so a command that meets a keychain that never answers ends within 3 s of its
 * start rather than 3 s after its start-up and the helper's; the probe still gets at least
 * `minimumProbe` (1 s) once the helper is ready, so a slow start on a loaded machine does
 * not turn a working keychain into a plain-text file. On Linux every entry is pinned to
 * Secret Service: the module's default silently falls back to the kernel keyutils store,
 * which forgets everything at reboot.
 *
 * The helper never keeps the parent alive: it and its channel are unreferenced while no
 * call is waiting, and it exits when the parent goes away (its IPC channel closes).
 */
import { StoreError } from "@agent-auth/core"
import { Duration, Effect, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import { createRequire } from "node:module"
import * as NodePath from "node:path"

/** The keychain's name for people: errors, warnings and `status` say it. */
export const keychainName: string = process.platform === "darwin"
  ? "the macOS Keychain"
  : process.platform === "win32"
  ? "the Windows Credential Manager"
  : "the system keychain (Secret Service)"

export const defaultProbeTimeout: Duration.Duration = Duration.seconds(3)
/** What the probe gets after the helper is ready, whatever is left before a `deadline` (a working keychain answers in milliseconds). */
export const minimumProbe: Duration.Duration = Duration.seconds(1)
/** A working keychain answers in milliseconds; an unlock prompt or a stuck daemon must not hold a model call longer. */
export const defaultCallTimeout: Duration.Duration = Duration.seconds(10)
/**
 * Starting the helper (a Node process loading the module) is not the risk the probe guards
 * against, and on a loaded machine it can take seconds: it has its own, wider limit, and
 * the 3 s of the probe start once the helper is ready.
 */
export const defaultStartTimeout: Duration.Duration = Duration.seconds(15)

export interface KeychainHost {
  /** Succeeds when the keychain answers within the probe limit (spawning the helper if need be). */
  readonly probe: Effect.Effect<void, StoreError>
  /** The password of an item, or null when there is none. */
  readonly get: (service: string, username: string) => Effect.Effect<string | null, StoreError>
  readonly set: (service: string, username: string, password: string) => Effect.Effect<void, StoreError>
  /** True when an item was deleted. */
  readonly remove: (service: string, username: string) => Effect.Effect<boolean, StoreError>
}

export interface HostOptions {
  readonly probeTimeout?: Duration.DurationInput | undefined
  readonly callTimeout?: Duration.DurationInput | undefined
  readonly startTimeout?: Duration.DurationInput | undefined
  /**
   * When the first helper's first call must have been answered (epoch milliseconds), when
   * that is sooner than `probeTimeout` after the helper is ready (but at least `minimumProbe`).
   */
  readonly deadline?: { readonly at: number; readonly says: string } | undefined
}

/**
 * The helper's program (CommonJS, given to `node -e`; its argument is the module's path).
 * Replies `{ id, value }` or `{ id, error }`, the error's first line only.
 */
const helperScript = `"use strict"
let keyring
try { keyring = require(process.argv[1]) } catch (e) { keyring = { loadError: String(e && e.message || e) } }
const options = { linux: { store: "secret-service" } }
const run = (m) => {
  if (keyring.loadError !== undefined) throw new Error("@napi-rs/keyring could not be loaded: " + keyring.loadError)
  const entry = () => new keyring.Entry(m.service, m.username, options)
  switch (m.op) {
    case "probe": return (new keyring.Entry("agent-auth-probe", "probe", options).getPassword(), null)
    case "get": return entry().getPassword()
    case "set": return (entry().setPassword(m.password), null)
    case "remove": return entry().deleteCredential()
    default: throw new Error("unknown operation")
  }
}
process.on("message", (m) => {
  let reply
  try { reply = { id: m.id, value: run(m) } } catch (e) { reply = { id: m.id, error: String(e && e.message || e).split("\\n")[0] } }
  process.send(reply)
})
process.on("disconnect", () => process.exit(0))
process.send({ ready: true })
`

/** The installed module's path, or why there is none (the CLI's optional dependency may be absent). */
export const modulePath = (): { readonly path: string } | { readonly missing: string } => {
  try {
    return { path: createRequire(import.meta.url).resolve("@napi-rs/keyring") }
  } catch {
    return { missing: "@napi-rs/keyring is not installed" }
  }
}

/** The socket paths of a D-Bus address list (`unix:path=…` entries; D-Bus %-escapes decoded), or undefined when one entry is of another kind. */
const unixPaths = (address: string): ReadonlyArray<string> | undefined => {
  const paths: Array<string> = []
  for (const entry of address.split(";").filter((e) => e !== "")) {
    const path = /^unix:(?:.*,)?path=([^,]*)/.exec(entry)?.[1]
    if (path === undefined) return undefined
    try {
      paths.push(decodeURIComponent(path))
    } catch {
      return undefined
    }
  }
  return paths
}

/**
 * On Linux, why there is certainly no session bus to reach Secret Service through (then no
 * helper is started, and the answer is instant): neither DBUS_SESSION_BUS_ADDRESS nor the
 * systemd user bus socket, or an address whose every socket file is absent.
 */
export const missingBus = (env: NodeJS.ProcessEnv = process.env): string | undefined => {
  if (process.platform !== "linux") return undefined
  const address = env.DBUS_SESSION_BUS_ADDRESS ?? ""
  if (address === "") {
    const runtime = env.XDG_RUNTIME_DIR ?? ""
    if (runtime !== "" && NodeFs.existsSync(NodePath.join(runtime, "bus"))) return undefined
    return "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set"
  }
  const paths = unixPaths(address)
  if (paths === undefined || paths.length === 0 || paths.some((p) => NodeFs.existsSync(p))) return undefined
  return `no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS names ${clean(paths.join(", "))}, which does not exist`
}

/** Text from the native module, made safe for a message: one line, printable, bounded. */
const clean = (text: string): string =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").trim().slice(0, 300) || "unknown error"

interface Reply {
  readonly ready?: true
  readonly id: number
  readonly value?: unknown
  readonly error?: string
}

type Request =
  | { readonly op: "probe" }
  | { readonly op: "get"; readonly service: string; readonly username: string }
  | { readonly op: "set"; readonly service: string; readonly username: string; readonly password: string }
  | { readonly op: "remove"; readonly service: string; readonly username: string }

/** A helper process, started on the first call; killed when `scope` closes. */
export const make = (options: HostOptions = {}): Effect.Effect<KeychainHost, never, Scope.Scope> =>
  Effect.gen(function*() {
    const probeTimeout = Duration.decode(options.probeTimeout ?? defaultProbeTimeout)
    const callTimeout = Duration.decode(options.callTimeout ?? defaultCallTimeout)
    const startTimeout = Duration.decode(options.startTimeout ?? defaultStartTimeout)
    /** Resolved when the current helper has loaded the module (or failed to start). */
    let ready: Promise<StoreError | undefined> = Promise.resolve(undefined)
    let child: ChildProcess.ChildProcess | undefined
    /** True once the current helper answered a call: later calls get `callTimeout`, the first `probeTimeout`. */
    let proven = false
    let seq = 0
    /** For the first helper's first call only: a later helper is not part of a command's start-up. */
    let deadline = options.deadline
    const pending = new Map<number, (reply: Reply) => void>()

    const fail = (reason: string) => new StoreError({ path: keychainName, reason })

    const stop = () => {
      const c = child
      child = undefined
      proven = false
      if (c !== undefined && c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
    }
    yield* Scope.addFinalizer(yield* Effect.scope, Effect.sync(stop))

    /** Reference the helper only while a call waits: an idle helper never keeps the parent running. */
    const hold = () => {
      if (child === undefined) return
      if (pending.size > 0) {
        child.ref()
        child.channel?.ref()
      } else {
        child.unref()
        child.channel?.unref()
      }
    }

    const start = (): ChildProcess.ChildProcess | StoreError => {
      const module = modulePath()
      if ("missing" in module) return fail(module.missing)
      let c: ChildProcess.ChildProcess
      try {
        c = ChildProcess.spawn(process.execPath, ["-e", helperScript, module.path], {
          stdio: ["ignore", "ignore", "ignore", "ipc"],
          // Not NODE_OPTIONS of the parent (a --require of a test runner, an inspector port).
          env: { ...process.env, NODE_OPTIONS: "" },
          windowsHide: true
        })
      } catch (e) {
        return fail(`could not start the keychain helper: ${clean(String((e as Error).message ?? e))}`)
      }
      let signalReady: (e: StoreError | undefined) => void = () => {}
      ready = new Promise((resolve) => (signalReady = resolve))
      c.on("message", (reply: Reply) => {
        if (reply.ready === true) return signalReady(undefined)
        const resume = pending.get(reply.id)
        if (resume !== undefined) resume(reply)
      })
      const gone = (why: string) => {
        signalReady(fail(why))
        if (child === c) {
          child = undefined
          proven = false
        }
        for (const [id, resume] of [...pending]) resume({ id, error: why })
      }
      c.on("exit", (code, signal) => gone(`the keychain helper exited (${signal ?? `code ${code}`})`))
      c.on("error", (e) => gone(`the keychain helper failed: ${clean(e.message)}`))
      return c
    }

    /** The helper, started if need be, once it has loaded the module (within `startTimeout`). */
    const helper: Effect.Effect<ChildProcess.ChildProcess, StoreError> = Effect.suspend(() => {
      const noBus = missingBus()
      if (noBus !== undefined) return Effect.fail(fail(noBus))
      if (child === undefined) {
        const started = start()
        if (started instanceof StoreError) return Effect.fail(started)
        child = started
      }
      const c = child
      c.ref()
      c.channel?.ref()
      return Effect.promise(() => ready).pipe(
        Effect.flatMap((e) => (e === undefined ? Effect.succeed(c) : Effect.fail(e))),
        Effect.timeoutFail({
          duration: startTimeout,
          onTimeout: () => {
            if (child === c) stop()
            return fail(`its helper process did not start within ${Duration.format(startTimeout)}`)
          }
        }),
        Effect.ensuring(Effect.sync(hold))
      )
    })

    /** The first call's limit: `probeTimeout`, or until the deadline when that is sooner (but at least `minimumProbe`). */
    const firstLimit = (): Duration.Duration => {
      if (deadline === undefined) return probeTimeout
      const left = deadline.at - Date.now()
      return Duration.millis(Math.min(Duration.toMillis(probeTimeout), Math.max(left, Duration.toMillis(minimumProbe))))
    }

    const call = (request: Request): Effect.Effect<unknown, StoreError> =>
      Effect.flatMap(helper, (c) => Effect.suspend(() => {
        const limit = proven ? callTimeout : firstLimit()
        // What the message names: the limit as set (the deadline's own words), not the milliseconds left of it.
        const within = proven
          ? Duration.format(callTimeout)
          : deadline !== undefined && deadline.at - Date.now() < Duration.toMillis(probeTimeout)
          ? deadline.says
          : Duration.format(probeTimeout)
        deadline = undefined
        const id = ++seq
        return Effect.async<unknown, StoreError>((resume) => {
          pending.set(id, (reply) => {
            pending.delete(id)
            hold()
            if (reply.error !== undefined) resume(Effect.fail(fail(clean(reply.error))))
            else {
              if (child === c) proven = true
              resume(Effect.succeed(reply.value))
            }
          })
          hold()
          try {
            c.send({ ...request, id })
          } catch (e) {
            pending.delete(id)
            hold()
            resume(Effect.fail(fail(`could not reach the keychain helper: ${clean(String((e as Error).message ?? e))}`)))
          }
          return Effect.sync(() => {
            pending.delete(id)
            hold()
          })
        }).pipe(
          Effect.timeoutFail({
            duration: limit,
            onTimeout: () => {
              // A helper stuck in a native call never comes back: kill it; the next call starts another.
              if (child === c) stop()
              return fail(
                `it did not answer within ${within} (is the keyring daemon running and unlocked, and is DBUS_SESSION_BUS_ADDRESS right?)`
              )
            }
          })
        )
      }))

    return {
      probe: Effect.asVoid(call({ op: "probe" })),
      get: (service, username) =>
        Effect.flatMap(call({ op: "get", service, username }), (v) =>
          v === null || typeof v === "string" ? Effect.succeed(v) : Effect.fail(fail("the helper answered a non-string"))),
      set: (service, username, password) => Effect.asVoid(call({ op: "set", service, username, password })),
      remove: (service, username) => Effect.map(call({ op: "remove", service, username }), (v) => v === true)
    } satisfies KeychainHost
  })
