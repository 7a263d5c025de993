/**
 * The command lines the small bundle (dist/agent-auth-fast.cjs) runs: `status` and `token`,
 * the commands scripts and agent runtimes call again and again, in their plain forms. The
 * launcher asks `fastArgs` before it loads anything; every other command line (any other
 * command, `--help`, `--version`, `--flag=value`, a typo, a usage error) goes to the whole
 * CLI, whose parser (parse.ts) decides what it means.
 *
 * So this accepts only what the whole CLI reads in exactly one way (tested with generated
 * command lines in test/properties.test.ts): the command word first,
 * written exactly; `--json`, `--verbose` and (for `token`) `--account VALUE`, each at most
 * once, anywhere after it; the provider as the one positional word (optional for
 * `status`). It refuses words a boolean flag's value could be (`--json yes`), anything starting with `-` it does not know, and words with whitespace or control characters.
 * It must stay dependency-free: the launcher embeds it.
 */
import { secretArgument } from "./secretWords.js"

export type FastArgs =
  | {
    readonly command: "status"
    readonly provider: string | undefined
    readonly json: boolean
    readonly verbose: boolean
  }
  | {
    readonly command: "token"
    readonly provider: string
    readonly account: string | undefined
    readonly json: boolean
    readonly verbose: boolean
  }

/** Words that read as a boolean flag's value (@effect/cli once read them so; kept out of the small bundle). */
const BOOLEAN_WORDS = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])

/**
 * A positional word or option value taken as written: not empty, no option, no whitespace
 * or control character anywhere (the whole CLI refuses those with its own message).
 */
const plainWord = (word: string): boolean => word.length > 0 && !word.startsWith("-") && /^[^\s\p{C}]+$/u.test(word)

export const fastArgs = (argv: ReadonlyArray<string>): FastArgs | undefined => {
  const command = argv[0]
  if (command !== "status" && command !== "token") return undefined
  // The whole CLI refuses a key typed as an argument without printing it (main.ts).
  if (secretArgument(argv) !== undefined) return undefined
  let json = false
  let verbose = false
  let account: string | undefined
  const positionals: Array<string> = []
  for (let i = 1; i < argv.length; i++) {
    const word = argv[i]!
    if (word === "--json") {
      if (json) return undefined
      json = true
    } else if (word === "--verbose") {
      if (verbose) return undefined
      verbose = true
    } else if (word === "--account" && command === "token") {
      const value = argv[i + 1]
      if (account !== undefined || value === undefined || !plainWord(value)) return undefined
      account = value
      i++
    } else if (plainWord(word) && !BOOLEAN_WORDS.has(word.toLowerCase())) {
      positionals.push(word)
    } else {
      return undefined
    }
  }
  if (positionals.length > 1) return undefined
  const provider = positionals[0]
  if (command === "status") return { command, provider, json, verbose }
  // `token demo` starts the embedded demo server (internal/demo.ts), which only the whole CLI has.
  if (provider === undefined || provider === "demo") return undefined
  return { command, provider, account, json, verbose }
}
