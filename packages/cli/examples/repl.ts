/**
 * A runtime's REPL that embeds agent-auth: `/auth login|status|logout|token …` runs the
 * `agent-auth` command in this process (its output on this console); any other line goes
 * to the agent. Run it with `node packages/cli/examples/run.mjs`.
 */
import { run } from "@agent-auth/cli"
import * as readline from "node:readline"

const AUTH = /^\/auth\s+(login|status|logout|token)\b(.*)$/

/** The agent's part: here it only echoes; a real runtime calls its model. */
const agent = (line: string) => console.log(`agent: ${line}`)

const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: false })
// One line at a time: a command finishes before the next line is read.
const lines = rl[Symbol.asyncIterator]()
console.log(`repl ${process.pid} ready`)
for (let next = await lines.next(); !next.done; next = await lines.next()) {
  const line = next.value.trim()
  const auth = AUTH.exec(line)
  if (auth === null) {
    if (line.length > 0) agent(line)
    continue
  }
  const args = [auth[1]!, ...auth[2]!.trim().split(/\s+/).filter((word) => word.length > 0)]
  const code = await run(args)
  console.log(`[/auth ${args[0]} exited ${code}]`)
}
rl.close()
