/**
 * The `agent-auth` CLI: the core services, wired for Node, behind @effect/cli commands.
 * Human text on stderr, data on stdout; exit codes per shared/DESIGN.md. The plain forms
 * of `status` and `token` usually run from fast.ts instead (see internal/fastArgs.ts).
 */
import { Command } from "@effect/cli"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import { NodeAuth } from "@agent-auth/node"
import { Effect, Layer } from "effect"
import { demo } from "./commands/demo.js"
import { importCommand } from "./commands/import.js"
import { login } from "./commands/login.js"
import { logout } from "./commands/logout.js"
import { mcp } from "./commands/mcp.js"
import { providers } from "./commands/providers.js"
import { refresh } from "./commands/refresh.js"
import { status } from "./commands/status.js"
import { token } from "./commands/token.js"
import { use } from "./commands/use.js"
import { demoServer } from "./internal/demo.js"
import { demoProvider } from "./internal/demoProvider.js"
import { mcpServers } from "./internal/mcpServers.js"
import { runCli } from "./internal/runtime.js"
import { SecretOnCommandLine } from "./internal/secretArgs.js"
import { secretArgument } from "./internal/secretWords.js"

const VERSION = "0.1.0"

const root = Command.make("agent-auth").pipe(
  Command.withDescription("OAuth sign-in and credentials for AI agent runtimes"),
  Command.withSubcommands([providers, login, status, token, refresh, logout, use, importCommand, demo, mcp])
)

const cli = Command.run(root, { name: "agent-auth", version: VERSION })

const secretAt = secretArgument(process.argv.slice(2))

runCli(
  Effect.zipRight(
    secretAt === undefined ? Effect.void : Effect.fail(new SecretOnCommandLine({ position: secretAt })),
    Effect.suspend(() => cli(process.argv))
  ).pipe(
    // The embedded demo server, only for command lines that talk to it; it lives as long as the command.
    Effect.provide(demoServer(process.argv.slice(2))),
    // A browser login provides its loopback server and browser launcher itself (commands/login.ts).
    Effect.provide(NodeAuth.layerServices({ providers: [demoProvider], providerSource: mcpServers })),
    // What @effect/cli needs; NodeContext.layer would also load the worker and command-executor
    // modules, which nothing here uses, at every start.
    Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer))
  )
)
