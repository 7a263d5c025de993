/**
 * @agent-auth/cli as a library: the `agent-auth` commands, run inside a runtime's own
 * process (its REPL's `/auth login openai`), on its console and terminal.
 */

/** `run(["status"])`: one command line, its exit code. */
export { run } from "./run.js"
/** The command tree (commands, flags, help), as the CLI reads it. */
export { root } from "./cli.js"
