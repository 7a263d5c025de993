/**
 * Terminal output. Human text goes to stderr, data (tokens, JSON) to stdout, so
 * `$(agent-auth token p)` captures the secret and nothing else.
 */
import { Clock, DateTime, Duration, Effect } from "effect"

export const stderrIsTty = (): boolean => process.stderr.isTTY === true
export const stdinIsTty = (): boolean => process.stdin.isTTY === true

/** A line for people, on stderr. */
export const say = (line: string) => Effect.sync(() => void process.stderr.write(line + "\n"))

/** Data, on stdout. */
export const data = (line: string) => Effect.sync(() => void process.stdout.write(line + "\n"))

/** One JSON object a line, on stdout (`--json`). */
export const event = (value: Record<string, unknown>) => data(JSON.stringify(value))

/** A clickable link on terminals that know OSC 8; the plain URL is always printed too. */
export const link = (url: string): string =>
  stderrIsTty() ? `\u001b]8;;${url}\u001b\\${url}\u001b]8;;\u001b\\` : url

const color = (code: number) => (s: string) => (stderrIsTty() && process.env.NO_COLOR === undefined ? `\u001b[${code}m${s}\u001b[0m` : s)
export const green = color(32)
export const red = color(31)
export const yellow = color(33)
export const bold = color(1)
export const dim = color(2)

/** "in 52 min", "3 h ago": the distance from now to `when`. */
export const relative = (when: DateTime.Utc, nowMillis: number): string => {
  const ms = DateTime.toEpochMillis(when) - nowMillis
  const abs = Math.abs(ms)
  const text = abs < 60_000
    ? `${Math.round(abs / 1000)} s`
    : abs < 3_600_000
    ? `${Math.round(abs / 60_000)} min`
    : abs < 172_800_000
    ? `${Math.floor(abs / 3_600_000)} h ${Math.round((abs % 3_600_000) / 60_000)} min`
    : `${Math.round(abs / 86_400_000)} days`
  return ms >= 0 ? `in ${text}` : `${text} ago`
}

/** "2026-11-29 03:00:00 UTC (in 52 min)" */
export const expiry = (when: DateTime.Utc) =>
  Effect.map(Clock.currentTimeMillis, (now) =>
    `${DateTime.formatIso(when).replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC")} (${relative(when, now)})`)

/**
 * A spinner on stderr while `effect` runs, only on a terminal. Written with real timers
 * (not Effect's clock): it is decoration, and must not be driven by test clocks.
 */
export const withSpinner = <A, E, R>(text: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (!stderrIsTty()) return effect
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
  return Effect.acquireUseRelease(
    Effect.sync(() => {
      let i = 0
      return setInterval(() => process.stderr.write(`\r${frames[i++ % frames.length]} ${text}`), 100)
    }),
    () => effect,
    (timer) => Effect.sync(() => {
      clearInterval(timer)
      process.stderr.write("\r\u001b[2K")
    })
  )
}

export const durationText = (d: Duration.Duration) => Duration.format(d)
