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

const paint = (isTty: () => boolean) => (code: number) => (s: string) =>
  isTty() && process.env.NO_COLOR === undefined ? `\u001b[${code}m${s}\u001b[0m` : s
const color = paint(stderrIsTty)
export const green = color(32)
export const red = color(31)
export const yellow = color(33)
export const bold = color(1)
export const dim = color(2)

/** The same styles for text written to stdout (a report): plain unless stdout is a terminal. */
const colorOut = paint(() => process.stdout.isTTY === true)
export const onStdout = { green: colorOut(32), red: colorOut(31), yellow: colorOut(33), bold: colorOut(1), dim: colorOut(2) }

/** The marks of a report line: used, usable but not used, unusable. */
export const MARK = { ok: "✓", other: "-", bad: "✗" } as const

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

const two = (n: number) => String(n).padStart(2, "0")

/** "2026-11-29 04:00:00 +01:00": local time (the process's TZ) with its offset from UTC. */
export const localTime = (millis: number): string => {
  const d = new Date(millis)
  const offset = -d.getTimezoneOffset()
  const sign = offset < 0 ? "-" : "+"
  const abs = Math.abs(offset)
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ` +
    `${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`
}

/** "2026-11-29 04:00:00 +01:00 (in 52 min)" */
export const expiry = (when: DateTime.Utc) =>
  Effect.map(Clock.currentTimeMillis, (now) => `${localTime(DateTime.toEpochMillis(when))} (${relative(when, now)})`)

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
