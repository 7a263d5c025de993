/**
 * Words of a command line that may be an API key or token, and so must never be printed
 * back (a usage error may quote an unexpected argument, and an unknown provider is
 * named in its error). Dependency-free: the launcher embeds it (through
 * fastArgs.ts), so the small bundle never gets such a line.
 *
 * A word is refused, by position, when
 * - it looks like a key (a known prefix, or a long random-looking word) anywhere, also as
 *   the value of `--flag=value`;
 * - it gives `--with-api-key` a value (`--with-api-key=VALUE`: the flag reads stdin);
 * - it is a positional word a command does not take (`login anthropic --with-api-key
 *   0123…`: any shape, since a key pasted after the flag is the likeliest extra word);
 * - it stands where a provider name goes and is not shaped like one (`login gsk_…`); for
 *   `token`, `status`, `refresh`, `logout` and `mcp login|logout`, an MCP server's http(s)
 *   URL is taken there too: one without a user or password, none of whose parts (host, path
 *   segments, query names and values, fragment) looks like a key.
 */

/** Beginnings of API keys and tokens: OpenAI, Anthropic, Groq, xAI, Perplexity, Hugging Face, Replicate keys, JWTs, Google, GitHub, GitLab, Slack, AWS. */
const secretPrefixes = [
  "sk-",
  "sk_",
  "sess-",
  "eyJ",
  "ya29.",
  "AIza",
  "ghp_",
  "gho_",
  "github_pat_",
  "gsk_",
  "xai-",
  "pplx-",
  "hf_",
  "r8_",
  "glpat-",
  "xoxb-",
  "xoxp-",
  "AKIA"
]

/** Long, one word of a key's alphabet, letters and digits mixed, and not a path. */
const randomLooking = (word: string): boolean =>
  word.length >= 32 && /^[A-Za-z0-9_\-.+/=]+$/.test(word) && /\d/.test(word) && /[A-Za-z]/.test(word) &&
  !/^[./~]/.test(word)

/** Long enough, one word, and starting the way keys and tokens start, or long and random-looking. */
export const looksLikeSecret = (word: string): boolean =>
  (word.length >= 20 && !/\s/.test(word) && secretPrefixes.some((prefix) => word.startsWith(prefix))) || randomLooking(word)

/** A provider id as config.json allows it (core's `ProviderId`). */
const providerShaped = (word: string): boolean => /^[a-z0-9][a-z0-9_-]{0,63}$/.test(word)

/**
 * An http(s) URL, as an MCP server is named: no user or password in it, and no part of it
 * (split at / ? & = # ; , and percent-decoded) looks like a key, so a key sent in a query
 * (`https://host/mcp?key=sk-…`) is still refused.
 */
export const urlShaped = (word: string): boolean => {
  if (!/^https?:\/\//i.test(word) || !URL.canParse(word)) return false
  const url = new URL(word)
  if (url.username !== "" || url.password !== "") return false
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part)
    } catch {
      return part
    }
  }
  return `${url.hostname}${url.pathname}${url.search}${url.hash}`.split(/[/?&=#;,]/).every((part) =>
    !looksLikeSecret(part) && !looksLikeSecret(decode(part))
  )
}

/** Options that take the next word as their value (every command's, and the root's). */
const VALUE_OPTIONS = new Set([
  "--account",
  "--port",
  "--timeout",
  "--from",
  "--home",
  "--completions",
  "--log-level",
  "--name",
  "--scope",
  "--client-id"
])

/** Words once read as the value of a boolean flag placed before them (by @effect/cli, since replaced): still refused there. */
const BOOLEAN_WORDS = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])

/** What may stand first among a command's positional words: a provider id, or also an MCP server's URL. */
type First = "provider" | "provider_or_url"

/** Commands (by their words) whose positional words are checked: how many each takes, and what the first may be. */
const POSITIONALS: Readonly<Record<string, { readonly count: number; readonly first: First }>> = {
  login: { count: 1, first: "provider" },
  use: { count: 2, first: "provider" },
  logout: { count: 1, first: "provider_or_url" },
  refresh: { count: 1, first: "provider_or_url" },
  status: { count: 1, first: "provider_or_url" },
  token: { count: 1, first: "provider_or_url" },
  // A word that is not a URL goes on to the parser, which says an MCP server is named by its URL.
  "mcp login": { count: 1, first: "provider_or_url" },
  "mcp list": { count: 0, first: "provider" },
  "mcp logout": { count: 1, first: "provider_or_url" }
}

const firstOk = (first: First, word: string): boolean => providerShaped(word) || (first === "provider_or_url" && urlShaped(word))

const firstReason: Readonly<Record<First, string>> = {
  provider: "stands where a provider name goes and is not one (a-z, 0-9, - and _)",
  provider_or_url: "stands where a provider name goes and is not one (a-z, 0-9, - and _) nor an MCP server's URL"
}

export interface Refused {
  /** 1-based, among the arguments after `agent-auth`. */
  readonly position: number
  /** What is wrong with it, in words that do not show it. */
  readonly reason: string
}

/** The first argument that may be a secret, with why; undefined for a clean line. */
export const refusedArgument = (args: ReadonlyArray<string>): Refused | undefined => {
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!
    const eq = word.startsWith("-") ? word.indexOf("=") : -1
    if (looksLikeSecret(eq === -1 ? word : word.slice(eq + 1))) {
      return { position: i + 1, reason: "looks like an API key or token" }
    }
    if (eq !== -1 && word.slice(0, eq) === "--with-api-key") {
      return { position: i + 1, reason: "gives --with-api-key a value (the flag reads the key from stdin)" }
    }
  }
  // `mcp` is a group: its subcommand, the second word, is part of the command.
  const words = args[0] === "mcp" ? 2 : 1
  const command = args.slice(0, words).join(" ")
  const spec = POSITIONALS[command]
  if (spec === undefined) return undefined
  let seen = 0
  for (let i = words; i < args.length; i++) {
    const word = args[i]!
    if (word === "--") return undefined
    if (word.startsWith("-")) {
      // A value option consumes the next word; a boolean flag may consume a yes/no word.
      if (VALUE_OPTIONS.has(word)) i++
      else if (!word.includes("=") && BOOLEAN_WORDS.has((args[i + 1] ?? "").toLowerCase())) i++
      continue
    }
    seen++
    if (seen > spec.count) return { position: i + 1, reason: `is not expected by \`${command}\`` }
    if (seen === 1 && !firstOk(spec.first, word)) return { position: i + 1, reason: firstReason[spec.first] }
  }
  return undefined
}

/** The 1-based position of the first argument that may be a secret (see `refusedArgument`). */
export const secretArgument = (args: ReadonlyArray<string>): number | undefined => refusedArgument(args)?.position
