/**
 * How a command line runs, for both entry points (main.ts, the whole CLI; fast.ts, `status`
 * and `token`): logs on stderr, errors reported with their exit code, Ctrl-C as 130.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, FiberRef, HashSet, Logger, LogLevel, Option } from "effect"
import { exitCodeOf, teardown } from "./exit.js"
import { red, say } from "./output.js"

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
const withLogging = <A, E>(program: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  program.pipe(
    Effect.locallyWith(FiberRef.currentLoggers, (loggers) => HashSet.add(HashSet.remove(loggers, Logger.defaultLogger), logger)),
    Logger.withMinimumLogLevel(verbose ? LogLevel.Debug : LogLevel.Warning)
  )

/** A failure as the person sees it, and the exit code it sets. */
const report = <E>(cause: Cause.Cause<E>): Effect.Effect<void, E> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const e = failure.value as { _tag?: string; message?: string }
    // @effect/cli has already printed its usage errors.
    const printed = e._tag !== undefined && exitCodeOf(e) === 2 && !("exitCode" in e)
    return Effect.zipRight(
      printed ? Effect.void : say(`${red("Error:")} ${e.message ?? String(e)}`),
      Effect.sync(() => void (process.exitCode = exitCodeOf(e)))
    )
  }
  return Effect.zipRight(
    say(`${red("Internal error")} (a bug in agent-auth; please report it with --verbose output):\n${Cause.pretty(cause)}`),
    Effect.sync(() => void (process.exitCode = 70))
  )
}

/** Runs a command line's program (its services provided) to the end of the process. */
export const runCli = <E>(program: Effect.Effect<void, E>): void =>
  NodeRuntime.runMain(withLogging(Effect.catchAllCause(program, report)), {
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown
  })
