/**
 * The `agent-auth` CLI: the command tree (cli.ts), read by our own parser, run on the core
 * services wired for Node. Human text on stderr, data on stdout; exit codes per
 * shared/DESIGN.md. `--help`, `--version` and `--completions` need no services, so a
 * broken config.json never blocks them. The plain forms of `status` and `token` usually
 * run from fast.ts instead (see internal/fastArgs.ts).
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
import { runCli } from "./internal/runtime.js"
import { sqlStore } from "./internal/sqlStore.js"
import { SecretOnCommandLine } from "./internal/secretArgs.js"
import { refusedArgument } from "./internal/secretWords.js"

const argv = process.argv.slice(2)
const write = (text: string) => Effect.sync(() => void process.stdout.write(text))

const program = (): Effect.Effect<void, unknown> => {
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

runCli(Effect.suspend(program))
