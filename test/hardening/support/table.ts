/**
 * The hardening table. Every case is one test that records `{area, case, outcome}`; each
 * file prints its own section (its cases and a count) when it ends, and the last hardening
 * file of a run to end prints the totals of all of them.
 *
 * Vitest runs each file in its own forked process, so the files meet in a folder under the
 * temp dir keyed by the vitest process (the parent of every fork) and its start time.
 * A case is recorded as FAILED when it is defined and only turned into its outcome when its
 * test passes: a case that throws, fails an assertion or times out stays FAILED in the table.
 */
import { afterAll, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * `refused`: an attack or bad input was turned away. `survived`: a fault or crash left
 * everything intact. `lost`: the fault costs the login and nothing client-side can prevent
 * it (the provider rotated the refresh token and its answer never arrived); the case shows
 * the message says exactly that and what to run.
 */
export type Outcome = "refused" | "survived" | "lost"

export interface Row {
  readonly area: string
  readonly case: string
  /** `skipped` until the case starts (a filtered run), `FAILED` from its start until it passes. */
  outcome: Outcome | "FAILED" | "skipped"
  /** How it was refused or survived, in a few words (what the test observed). */
  how: string
  ms: number
}

/** Lets a case say, in the table, what it observed. */
export interface Note {
  readonly note: (how: string) => void
}

const folder = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

/** Every hardening test file, so the last one to end knows it is the last. */
const allFiles = (): ReadonlyArray<string> => fs.readdirSync(folder).filter((f) => f.endsWith(".test.ts")).sort()

/** The vitest process's start time (Linux), so a reused pid never mixes two runs. */
const parentStart = (): string => {
  try {
    return fs.readFileSync(`/proc/${process.ppid}/stat`, "utf8").split(") ")[1]?.split(" ")[19] ?? "0"
  } catch {
    return "0"
  }
}

const runDir = path.join(os.tmpdir(), `agent-auth-hardening-${process.ppid}-${parentStart()}`)

const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length))

const render = (rows: ReadonlyArray<Row>): string => {
  const w = {
    area: Math.max(4, ...rows.map((r) => r.area.length)),
    case: Math.max(4, ...rows.map((r) => r.case.length)),
    outcome: 8
  }
  const line = (a: string, c: string, o: string, h: string) => `${pad(a, w.area)}  ${pad(c, w.case)}  ${pad(o, w.outcome)}  ${h}`.trimEnd()
  return [
    line("area", "case", "outcome", "how"),
    line("-".repeat(w.area), "-".repeat(w.case), "-".repeat(w.outcome), "---"),
    ...rows.map((r) => line(r.area, r.case, r.outcome, r.how))
  ].join("\n")
}

const count = (rows: ReadonlyArray<Row>) => ({
  tried: rows.length,
  refused: rows.filter((r) => r.outcome === "refused").length,
  survived: rows.filter((r) => r.outcome === "survived").length,
  lost: rows.filter((r) => r.outcome === "lost").length,
  failed: rows.filter((r) => r.outcome === "FAILED").length
})

const countText = (rows: ReadonlyArray<Row>) => {
  const c = count(rows)
  return `${c.tried} tried: ${c.refused} refused, ${c.survived} survived, ${c.lost} lost (unavoidable), ${c.failed} FAILED`
}

/** Writes this file's rows, prints its section, and prints the totals when every file has written. */
const publish = (area: string, file: string, allRows: ReadonlyArray<Row>) => {
  const rows = allRows.filter((r) => r.outcome !== "skipped")
  const seconds = (rows.reduce((s, r) => s + r.ms, 0) / 1000).toFixed(1)
  const skipped = allRows.length - rows.length
  console.log(
    `\nHardening — ${area} (test/hardening/${file}), ${countText(rows)}${skipped > 0 ? `, ${skipped} not run` : ""}, ${seconds} s\n\n${render(rows)}\n`
  )
  try {
    fs.mkdirSync(runDir, { recursive: true })
    fs.writeFileSync(path.join(runDir, `${file}.json`), JSON.stringify(rows))
    const files = allFiles()
    const done = fs.readdirSync(runDir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5))
    if (!files.every((f) => done.includes(f))) return
    const all: Array<Row> = files.flatMap((f) => JSON.parse(fs.readFileSync(path.join(runDir, `${f}.json`), "utf8")) as Array<Row>)
    fs.rmSync(runDir, { recursive: true, force: true })
    const areas = [...new Set(all.map((r) => r.area))]
    const width = Math.max(5, ...areas.map((a) => a.length))
    const totalLine = (name: string, rs: ReadonlyArray<Row>) => {
      const c = count(rs)
      return `${pad(name, width)}  ${pad(String(c.tried), 5)}  ${pad(String(c.refused), 7)}  ${pad(String(c.survived), 8)}  ${pad(String(c.lost), 4)}  ${c.failed}`
    }
    console.log(
      [
        "",
        `Hardening totals (every file of test/hardening/ in this run): ${countText(all)}`,
        "",
        `${pad("area", width)}  tried  refused  survived  lost  FAILED`,
        ...areas.map((a) => totalLine(a, all.filter((r) => r.area === a))),
        totalLine("all", all),
        ""
      ].join("\n")
    )
  } catch (e) {
    console.log(`(hardening totals not printed: ${String(e)})`)
  }
}

/**
 * The cases of one area, each a test. `file` is the test file's `import.meta.url`.
 * The body gets `note` to say, in the table, what it observed.
 */
export const area = (name: string, fileUrl: string) => {
  const file = path.basename(fileURLToPath(fileUrl))
  const rows: Array<Row> = []
  afterAll(() => publish(name, file, rows))

  const row = (title: string, outcome: Outcome) => {
    const r: Row = { area: name, case: title, outcome: "skipped", how: "", ms: 0 }
    rows.push(r)
    return {
      note: { note: (how: string) => void (r.how = how) } satisfies Note,
      start: () => {
        r.outcome = "FAILED"
        return Date.now()
      },
      finish: (start: number, ok: boolean) => {
        r.ms = Date.now() - start
        r.outcome = ok ? outcome : "FAILED"
      }
    }
  }

  const tracked = <A, E, R>(title: string, outcome: Outcome, body: (n: Note) => Effect.Effect<A, E, R>) => {
    const r = row(title, outcome)
    return () =>
      Effect.suspend(() => {
        const start = r.start()
        return body(r.note).pipe(Effect.onExit((exit) => Effect.sync(() => r.finish(start, exit._tag === "Success"))))
      })
  }

  return {
    /** Under TestClock. */
    effect: <A, E>(title: string, outcome: Outcome, body: (n: Note) => Effect.Effect<A, E>, timeout?: number) =>
      it.effect(title, tracked(title, outcome, body), timeout),
    /** Under TestClock, with a scope. */
    scoped: <A, E>(title: string, outcome: Outcome, body: (n: Note) => Effect.Effect<A, E, Scope.Scope>, timeout?: number) =>
      it.scoped(title, tracked(title, outcome, body), timeout),
    /** Real time: real sockets and processes. */
    live: <A, E>(title: string, outcome: Outcome, body: (n: Note) => Effect.Effect<A, E>, timeout?: number) =>
      it.live(title, tracked(title, outcome, body), timeout),
    /**
     * Real time, a plain async body (child processes). `concurrent` runs the case alongside
     * the file's other concurrent cases (for cases that mostly wait, such as retry back-offs).
     */
    promise: (
      title: string,
      outcome: Outcome,
      body: (n: Note) => Promise<void>,
      options: { readonly timeout?: number; readonly concurrent?: boolean } = {}
    ) => {
      const r = row(title, outcome)
      return (options.concurrent === true ? it.concurrent : it)(title, async () => {
        const start = r.start()
        try {
          await body(r.note)
          r.finish(start, true)
        } catch (e) {
          r.finish(start, false)
          throw e
        }
      }, options.timeout)
    }
  }
}
