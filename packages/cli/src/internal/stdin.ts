/** Reading from stdin: a secret (API key) or pasted redirect URLs, never from argv. */
import { Effect, Redacted, type Scope } from "effect"
import * as readline from "node:readline"

/**
 * All of stdin (or one line on a terminal, not echoed), trimmed, as a Redacted. On a
 * terminal `prompt` is shown once echo is off: what is typed as soon as it appears is not
 * shown either.
 */
export const readSecretFromStdin = (prompt: string): Effect.Effect<Redacted.Redacted<string>> => Effect.async<Redacted.Redacted<string>>((resume) => {
  const stdin = process.stdin
  if (stdin.isTTY) {
    // Raw mode so the key is not echoed to the screen.
    let buf = ""
    stdin.setRawMode(true)
    process.stderr.write(prompt + "\n")
    stdin.resume()
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          cleanup()
          process.stderr.write("\n")
          return resume(Effect.succeed(Redacted.make(buf.trim())))
        }
        if (ch === "\u0003") {
          cleanup()
          process.kill(process.pid, "SIGINT")
          return
        }
        buf = ch === "\u007f" ? buf.slice(0, -1) : buf + ch
      }
    }
    const cleanup = () => {
      stdin.off("data", onData)
      stdin.setRawMode(false)
      stdin.pause()
    }
    stdin.on("data", onData)
    return Effect.sync(cleanup)
  }
  const chunks: Array<Buffer> = []
  const onData = (c: Buffer) => chunks.push(c)
  const onEnd = () => resume(Effect.succeed(Redacted.make(Buffer.concat(chunks).toString("utf8").trim())))
  stdin.on("data", onData)
  stdin.once("end", onEnd)
  stdin.resume()
  return Effect.sync(() => {
    stdin.off("data", onData)
    stdin.off("end", onEnd)
    stdin.pause()
  })
})

/**
 * A source of pasted lines on a terminal: each run of the effect prompts and reads one
 * line. When stdin closes (Ctrl-D), it says so once and waits forever instead of failing,
 * so the browser can still win. Ctrl-C at the prompt is the process's SIGINT: readline
 * would otherwise swallow the first one (it pauses when nobody listens for it).
 */
export const pastedLines = (prompt: string): Effect.Effect<Effect.Effect<string>, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true })
        const state = { rl, releasing: false }
        rl.on("SIGINT", () => process.kill(process.pid, "SIGINT"))
        rl.once("close", () => {
          if (!state.releasing) process.stderr.write("\nNothing pasted (stdin closed); still waiting for the browser. Ctrl-C cancels.\n")
        })
        return state
      }),
      (state) => Effect.sync(() => {
        state.releasing = true
        state.rl.close()
      })
    ),
    ({ rl }) => {
      let closed = false
      rl.once("close", () => {
        closed = true
      })
      return Effect.async<string>((resume) => {
        if (closed) return
        const onLine = (line: string) => {
          rl.off("close", onClose)
          resume(Effect.succeed(line))
        }
        const onClose = () => rl.off("line", onLine)
        rl.once("line", onLine)
        rl.once("close", onClose)
        rl.setPrompt(prompt)
        rl.prompt()
        return Effect.sync(() => {
          rl.off("line", onLine)
          rl.off("close", onClose)
        })
      })
    }
  )
