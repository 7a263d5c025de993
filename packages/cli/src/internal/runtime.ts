/**
 * How a command line runs, for both entry points (main.ts, the whole CLI; fast.ts, `status`
 * and `token`): logs on stderr, errors reported with their exit code, Ctrl-C as 130.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, FiberRef, HashSet, Logger, LogLevel, Option } from "effect"
import { ExitCode } from "@agent-auth/core"
import { NodeKeyringStore } from "@agent-auth/node"
import { exitCodeOf, teardown } from "./exit.js"
import { data, red, say } from "./output.js"

const verbose = process.argv.includes("--verbose") || process.env.AGENT_AUTH_LOG === "debug"

/** Logs go to stderr (stdout carries data only); debug traces only with --verbose. */
const logger = Logger.make(({ annotations, date, logLevel, message }) => {
  const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
  // Annotations (endpoint, status, duration_ms, rule, …) as key=value, sorted; they never hold a secret.
  let fields = ""
  for (const [k, v] of [...annotations].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const value = typeof v === "string" ? v : JSON.stringify(v) ?? String(v)
    fields += ` ${k}=${/[\s"=]/.test(value) ? JSON.stringify(value) : value}`
  }
  process.stderr.write(`${date.toISOString()} ${logLevel.label.toLowerCase()} ${text}${fields}\n`)
})

/**
 * What `Effect.provide(Layer.mergeAll(Logger.replace(Logger.defaultLogger, logger),
 * Logger.minimumLogLevel(…)))` does, set on the program's fiber directly: building those
 * layers costs a few milliseconds of every start.
 */
const withLogging = <A, E>(program: Effect.Effect<A, E>, debug: boolean = verbose): Effect.Effect<A, E> =>
  program.pipe(
    Effect.locallyWith(FiberRef.currentLoggers, (loggers) => HashSet.add(HashSet.remove(loggers, Logger.defaultLogger), logger)),
    Logger.withMinimumLogLevel(debug ? LogLevel.Debug : LogLevel.Warning)
  )

/** Whether errors are also reported as JSON on stdout: `--json` among the flags (before a `--`). */
export const jsonRequested = (argv: ReadonlyArray<string>): boolean => {
  for (const word of argv) {
    if (word === "--") return false
    if (word === "--json") return true
  }
  return false
}

/** `{"error":{"tag","message","exitCode"}}`, the one line `--json` prints on stdout for a failure. */
export const errorJson = (tag: string, message: string, exitCode: number): string =>
  JSON.stringify({ error: { tag, message, exitCode } })

/**
 * A failure as the person sees it: one line on stderr (never the usage text), and under
 * `--json` the same as one JSON object on stdout; the exit code it sets.
 */
const report = (json: boolean) => <E>(cause: Cause.Cause<E>): Effect.Effect<void, E> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const e = failure.value as { _tag?: string; message?: string }
    const code = exitCodeOf(e)
    const message = e.message ?? String(e)
    return Effect.zipRight(
      Effect.zipRight(
        // A cancellation the person asked for is not an error.
        say(code === ExitCode.Cancelled ? message : `${red("Error:")} ${message}`),
        json ? data(errorJson(e._tag ?? "Error", message, code)) : Effect.void
      ),
      Effect.sync(() => void (process.exitCode = code))
    )
  }
  return Effect.zipRight(
    say(`${red("Internal error")} (a bug in agent-auth; please report it with --verbose output):\n${Cause.pretty(cause)}`),
    Effect.sync(() => void (process.exitCode = 70))
  )
}

/** Said when Ctrl-C (SIGINT) or SIGTERM ends a command; the exit code is 130. */
const CANCELLED = "Cancelled; nothing more was done."

/** Runs a command line's program (its services provided) to the end of the process. */
export const runCli = <E>(program: Effect.Effect<void, E>, options: { readonly json?: boolean } = {}): void => {
  const json = options.json ?? jsonRequested(process.argv.slice(2))
  NodeRuntime.runMain(
    withLogging(
      // A keychain that never answers costs this command its wait counted from its start, not after it.
      Effect.catchAllCause(
        Effect.provideService(program, NodeKeyringStore.ProbeDeadline, { deadline: NodeKeyringStore.commandDeadline() }),
        report(json)
      ).pipe(
        Effect.onInterrupt(() =>
          Effect.zipRight(say(CANCELLED), json ? data(errorJson("Cancelled", CANCELLED, ExitCode.Cancelled)) : Effect.void)
        )
      )
    ),
    {
      disableErrorReporting: true,
      disablePrettyLogger: true,
      teardown
    }
  )
}

/**
 * Runs a command line's program inside a process that goes on (a runtime's REPL): the same
 * reporting as `runCli`, the exit code returned rather than set. The process's own exit
 * code is left as it was.
 */
export const runInProcess = async <E>(program: Effect.Effect<void, E>, argv: ReadonlyArray<string>): Promise<number> => {
  const json = jsonRequested(argv)
  const debug = argv.includes("--verbose") || process.env.AGENT_AUTH_LOG === "debug"
  const before = process.exitCode
  process.exitCode = undefined
  try {
    const exit = await Effect.runPromiseExit(withLogging(Effect.catchAllCause(program, report(json)), debug))
    let code = 0
    teardown(exit, (c) => void (code = c))
    return code
  } finally {
    process.exitCode = before
  }
}
