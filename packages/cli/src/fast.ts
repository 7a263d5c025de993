/**
 * The small bundle's entry point (dist/agent-auth-fast.cjs): `status` and `token` in the
 * plain forms internal/fastArgs.ts accepts, which the launcher sends here instead of to
 * the whole CLI. The same handlers, services and runtime as main.ts, without the command
 * parser and without what only other commands load (login flows, the loopback server, the
 * browser launcher, the demo server, the menu). Those two commands then start in about
 * half the time; any other command line never comes here.
 */
import { NodeAuth } from "@agent-auth/node"
import { Effect } from "effect"
import { status } from "./handlers/status.js"
import { token } from "./handlers/token.js"
import { demoProvider } from "./internal/demoProvider.js"
import { mcpServers } from "./internal/mcpServers.js"
import { fastArgs } from "./internal/fastArgs.js"
import { runCli } from "./internal/runtime.js"

const args = fastArgs(process.argv.slice(2))

const program = args === undefined
  // Only the launcher starts this bundle, and only for command lines fastArgs accepts.
  ? Effect.die(new Error("dist/agent-auth-fast.cjs runs only `status` and `token`; run dist/agent-auth.mjs"))
  : args.command === "status"
  ? status(args)
  : token(args)

runCli(program.pipe(Effect.provide(NodeAuth.layerResolve({ providers: [demoProvider], providerSource: mcpServers }))))
