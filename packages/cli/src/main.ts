/**
 * The `agent-auth` CLI: the command tree (cli.ts), read by our own parser, run on the core
 * services wired for Node. Human text on stderr, data on stdout; exit codes per
 * shared/DESIGN.md. `--help`, `--version` and `--completions` need no services, so a
 * broken config.json never blocks them. The plain forms of `status` and `token` usually
 * run from fast.ts instead (see internal/fastArgs.ts).
 */
import { Effect } from "effect"
import { runCli } from "./internal/runtime.js"
import { commandLine } from "./run.js"

runCli(Effect.suspend(() => commandLine(process.argv.slice(2))))
