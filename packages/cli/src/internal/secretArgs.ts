/**
 * A secret typed on the command line (`--with-api-key sk-…`, or a token pasted as an
 * argument) is refused before the command line is parsed: a usage error quoting an
 * unexpected argument would print the key back into a terminal, a CI log or a
 * screen share. The refusal names the argument's position and why, never its value
 * (internal/secretWords.ts says which words are refused).
 */
import { ExitCode } from "@agent-auth/core"
import { Schema } from "effect"

export class SecretOnCommandLine extends Schema.TaggedError<SecretOnCommandLine>()("SecretOnCommandLine", {
  /** 1-based, among the arguments after `agent-auth`. */
  position: Schema.Number,
  /** Why it was refused, without showing it (default: it looks like a key). */
  reason: Schema.optional(Schema.String)
}) {
  readonly exitCode = ExitCode.Usage
  override get message() {
    return `Argument ${this.position} ${this.reason ?? "looks like an API key or token"}; it is not shown, in case it is a key. agent-auth never takes a secret on the command line (other programs can read it, and shells keep it in their history): pass a key on standard input, \`agent-auth login <provider> --with-api-key < key.txt\`. If it was a real key, consider it exposed and replace it.`
  }
}
