/** Reading from stdin: a secret (API key) or pasted redirect URLs, never from argv. */
import { ConfigInvalid } from "@agent-auth/core"
import { Effect, Redacted, type Scope } from "effect"
import * as readline from "node:readline"

/** The longest API key taken (DESIGN.md: one line, ≤ 4 KiB). */
export const maxKeyBytes = 4 * 1024

/**
 * Why `text` (all of stdin, or the line typed) is not an API key, or undefined when it is
 * one: one line of printable ASCII without spaces, ≤ 4 KiB, after a single line ending is
 * dropped. The reasons never quote the text.
 */
export const keyProblem = (text: string): string | undefined => {
  const line = text.replace(/\r?\n$/, "")
  if (line.trim() === "") return "no key was given on stdin"
  if (Buffer.byteLength(line, "utf8") > maxKeyBytes) return `the input is longer than ${maxKeyBytes / 1024} KiB, which no API key is`
  if (/[\r\n]/.test(line)) return "the input has more than one line (a .env file?); give the key alone"
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) return "the input holds control characters (Ctrl-D or an escape?); give the key alone"
  if (/\s/.test(line)) return "the input holds a space or a tab; an API key has none"
  if (/[^\x21-\x7e]/.test(line)) return "the input holds characters an API key does not (outside printable ASCII)"
  return undefined
}

const refused = (reason: string) => new ConfigInvalid({ source: "stdin", field: "api key", reason })

/**
 * An API key from stdin (or one line typed on a terminal, not echoed), checked with
 * `keyProblem` before anything is replaced: a refused input fails with `ConfigInvalid`
 * (exit 2); an empty one gives an empty key, which the caller refuses naming its command. At most 4 KiB (and a line ending) is read: more is refused without reading on.
 * On a terminal `prompt` is shown once echo is off: what is typed as soon as it appears is
 * not shown either.
 */
export const readSecretFromStdin = (prompt: string): Effect.Effect<Redacted.Redacted<string>, ConfigInvalid> =>
  Effect.flatMap(readRaw(prompt), (text) => {
    // Nothing given: an empty key, for the caller to say how to give one (login names its own command line).
    if (text.replace(/\r?\n$/, "").trim() === "") return Effect.succeed(Redacted.make(""))
    const problem = keyProblem(text)
    return problem === undefined ? Effect.succeed(Redacted.make(text.replace(/\r?\n$/, ""))) : Effect.fail(refused(problem))
  })

/** What was given, as text; `undefined`-free: a stop at the bound gives the bytes read so far (over the bound). */
const readRaw = (prompt: string): Effect.Effect<string> => Effect.async<string>((resume) => {
  const stdin = process.stdin
  if (stdin.isTTY) {
    // Raw mode so the key is not echoed to the screen.
    let buf = ""
    stdin.setRawMode(true)
    process.stderr.write(prompt + "\n")
    stdin.resume()
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        // Enter ends the line; Ctrl-D ends the input (as at a shell), never part of the key.
        if (ch === "\r" || ch === "\n" || ch === "\u0004") {
          cleanup()
          process.stderr.write("\n")
          return resume(Effect.succeed(buf))
        }
        if (ch === "\u0003") {
          cleanup()
          process.kill(process.pid, "SIGINT")
          return
        }
        buf = ch === "\u007f" ? buf.slice(0, -1) : buf + ch
        if (buf.length > maxKeyBytes) {
          cleanup()
          process.stderr.write("\n")
          return resume(Effect.succeed(buf))
        }
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
  let size = 0
  const done = () => {
    stdin.off("data", onData)
    stdin.off("end", onEnd)
    stdin.pause()
  }
  const onData = (c: Buffer) => {
    chunks.push(c)
    size += c.length
    // A key and its line ending fit well within this; past it, stop reading (50 MB never lands in memory).
    if (size > maxKeyBytes + 2) {
      done()
      resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    }
  }
  const onEnd = () => {
    done()
    resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
  }
  stdin.on("data", onData)
  stdin.once("end", onEnd)
  stdin.resume()
  return Effect.sync(done)
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
