/**
 * The `agent-auth` CLI: the core services, wired for Node, behind @effect/cli commands.
 * Human text on stderr, data on stdout; exit codes per shared/DESIGN.md.
 */
import { Command } from "@effect/cli"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import { NodeAuth } from "@agent-auth/node"
import { Cause, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { demo } from "./commands/demo.js"
import { importCommand } from "./commands/import.js"
import { login } from "./commands/login.js"
import { logout } from "./commands/logout.js"
import { providers } from "./commands/providers.js"
import { refresh } from "./commands/refresh.js"
import { status } from "./commands/status.js"
import { token } from "./commands/token.js"
import { use } from "./commands/use.js"
import { demoProvider, demoServer } from "./internal/demo.js"
import { exitCodeOf, teardown } from "./internal/exit.js"
import { red, say } from "./internal/output.js"

const VERSION = "0.1.0"

const root = Command.make("agent-auth").pipe(
  Command.withDescription("OAuth sign-in and credentials for AI agent runtimes"),
  Command.withSubcommands([providers, login, status, token, refresh, logout, use, importCommand, demo])
)

const cli = Command.run(root, { name: "agent-auth", version: VERSION })

const verbose = process.argv.includes("--verbose") || process.env.AGENT_AUTH_LOG === "debug"

/** Logs go to stderr (stdout carries data only); debug traces only with --verbose. */
const logging = Layer.mergeAll(
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, date, logLevel, message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      // Annotations (endpoint, status, duration_ms, rule, …) as key=value, sorted; they never hold a secret.
      let fields = ""
      for (const [k, v] of [...annotations].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const value = typeof v === "string" ? v : JSON.stringify(v) ?? String(v)
        fields += ` ${k}=${/[\s"=]/.test(value) ? JSON.stringify(value) : value}`
      }
      process.stderr.write(`${date.toISOString()} ${logLevel.label.toLowerCase()} ${text}${fields}\n`)
    })
  ),
  Logger.minimumLogLevel(verbose ? LogLevel.Debug : LogLevel.Warning)
)

const program = Effect.suspend(() => cli(process.argv)).pipe(
  // The embedded demo server, only for command lines that talk to it; it lives as long as the command.
  Effect.provide(demoServer(process.argv.slice(2))),
  Effect.provide(NodeAuth.layer({ providers: [demoProvider] })),
  Effect.catchAllCause((cause) => {
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
  }),
  // What @effect/cli needs; NodeContext.layer would also load the worker and command-executor
  // modules, which nothing here uses, at every start.
  Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)),
  Effect.provide(logging)
)

NodeRuntime.runMain(program, { disableErrorReporting: true, disablePrettyLogger: true, teardown })
