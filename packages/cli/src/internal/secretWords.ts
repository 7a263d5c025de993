/**
 * Words of a command line that look like an API key or token. Dependency-free: the
 * launcher embeds it (through fastArgs.ts), so the small bundle never gets such a line.
 */

/** Beginnings of API keys and tokens: OpenAI and Anthropic keys, JWTs, Google keys and tokens, GitHub tokens. */
const secretPrefixes = ["sk-", "sk_", "sess-", "eyJ", "ya29.", "AIza", "ghp_", "gho_", "github_pat_"]

/** Long enough, one word, and starting the way keys and tokens start. */
export const looksLikeSecret = (word: string): boolean =>
  word.length >= 20 && !/\s/.test(word) && secretPrefixes.some((prefix) => word.startsWith(prefix))

/** The 1-based position of the first argument that looks like a secret (also as `--flag=value`). */
export const secretArgument = (args: ReadonlyArray<string>): number | undefined => {
  const at = args.findIndex((word) => {
    const eq = word.startsWith("-") ? word.indexOf("=") : -1
    return looksLikeSecret(eq === -1 ? word : word.slice(eq + 1))
  })
  return at === -1 ? undefined : at + 1
}
