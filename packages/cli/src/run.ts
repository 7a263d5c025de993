/**
 * One `agent-auth` command line as an Effect (`commandLine`), and `run`, which runs one in
 * the calling process, on its console and terminal, and gives back the exit code instead of
 * ending the process: what a runtime's REPL calls for `/auth login openai` (see
 * examples/repl.ts). main.ts runs the same program as the `agent-auth` command.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { NodeAuth } from "@agent-auth/node"
import { Effect, Either, Layer } from "effect"
import { builtinProviderNames, root, VERSION } from "./cli.js"
import { completionScript } from "./internal/completions.js"
import { demoServer } from "./internal/demo.js"
import { demoProvider } from "./internal/demoProvider.js"
import { helpText } from "./internal/help.js"
import { parse } from "./internal/parse.js"
import { mcpServers } from "./internal/mcpServers.js"
import { runInProcess } from "./internal/runtime.js"
import { sqlStore } from "./internal/sqlStore.js"
import { SecretOnCommandLine } from "./internal/secretArgs.js"
import { refusedArgument } from "./internal/secretWords.js"

const write = (text: string) => Effect.sync(() => void process.stdout.write(text))

/** A command line (without `node` and the script), parsed and run on the Node services. */
export const commandLine = (argv: ReadonlyArray<string>): Effect.Effect<void, unknown> => {
  const refused = refusedArgument(argv)
  if (refused !== undefined) return Effect.fail(new SecretOnCommandLine(refused))
  const plan = parse(root, argv)
  if (Either.isLeft(plan)) return Effect.fail(plan.left)
  const p = plan.right
  switch (p._tag) {
    case "Version":
      return write(`agent-auth ${VERSION}\n`)
    case "Help":
      return write(helpText(p.path, p.command))
    case "Completions":
      return write(completionScript(p.shell, root, { node: process.execPath, script: process.argv[1] ?? "agent-auth", builtins: builtinProviderNames }))
    case "Run":
      return p.leaf.run(p.values).pipe(
        // The embedded demo server, only for command lines that talk to it; it lives as long as the command.
        Effect.provide(demoServer(argv)),
        // A browser login provides its loopback server and browser launcher itself (commands/login.ts).
        Effect.provide(NodeAuth.layerServices({ providers: [demoProvider], sqlStore, providerSource: mcpServers })),
        Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))
      ) as Effect.Effect<void, unknown>
  }
}

/**
 * Runs `agent-auth ARGV…` in this process and resolves with its exit code (0 ok, 1
 * authentication needed, 2 usage, 3 provider, 4 store, 130 cancelled). Output goes to this
 * process's stdout and stderr, as the command's would; one command line at a time.
 */
export const run = (argv: ReadonlyArray<string>): Promise<number> =>
  runInProcess(Effect.suspend(() => commandLine(argv)), argv)
