/**
 * A small menu on the terminal: drawn on stderr (stdout carries data only), keys read from
 * stdin in raw mode. ↑/↓ (or k/j) move, a digit jumps to that line, Enter chooses, Esc, q or
 * Ctrl-C cancel. The key handling is a pure state machine (`parseKeys`, `step`, `render`),
 * so it is tested without a terminal; `select` is the thin part that touches one.
 */
import { Effect, Option } from "effect"

export interface Item<A> {
  readonly label: string
  /** Shown after the label, dimmed (e.g. "✓ usable now"). */
  readonly note?: string | undefined
  readonly value: A
}

export type Key =
  | { readonly _tag: "Up" }
  | { readonly _tag: "Down" }
  | { readonly _tag: "Enter" }
  | { readonly _tag: "Cancel" }
  | { readonly _tag: "Digit"; readonly n: number }

const UP: Key = { _tag: "Up" }
const DOWN: Key = { _tag: "Down" }
const ENTER: Key = { _tag: "Enter" }
const CANCEL: Key = { _tag: "Cancel" }

/** The keys in a chunk of terminal input; anything else is ignored. */
export const parseKeys = (chunk: string): Array<Key> => {
  const keys: Array<Key> = []
  for (let i = 0; i < chunk.length; i++) {
    const c = chunk[i]!
    if (c === "\u001b") {
      // CSI (ESC [) or SS3 (ESC O) arrows; a lone ESC is a cancel.
      const next = chunk[i + 1]
      if (next === "[" || next === "O") {
        const final = chunk[i + 2]
        if (final === "A") keys.push(UP)
        else if (final === "B") keys.push(DOWN)
        i += 2
        continue
      }
      keys.push(CANCEL)
      continue
    }
    if (c === "\r" || c === "\n") keys.push(ENTER)
    else if (c === "\u0003" || c === "\u0004" || c === "q") keys.push(CANCEL)
    else if (c === "k") keys.push(UP)
    else if (c === "j") keys.push(DOWN)
    else if (c >= "1" && c <= "9") keys.push({ _tag: "Digit", n: Number(c) })
  }
  return keys
}

export interface State {
  readonly cursor: number
  readonly outcome: "open" | "chosen" | "cancelled"
}

export const initial: State = { cursor: 0, outcome: "open" }

/** One key applied to the menu of `count` lines. Moving wraps around. */
export const step = (state: State, key: Key, count: number): State => {
  if (state.outcome !== "open" || count === 0) return state
  switch (key._tag) {
    case "Up":
      return { ...state, cursor: (state.cursor - 1 + count) % count }
    case "Down":
      return { ...state, cursor: (state.cursor + 1) % count }
    case "Digit":
      return key.n <= count ? { ...state, cursor: key.n - 1 } : state
    case "Enter":
      return { ...state, outcome: "chosen" }
    case "Cancel":
      return { ...state, outcome: "cancelled" }
  }
}

export interface Style {
  readonly bold: (s: string) => string
  readonly dim: (s: string) => string
}

const plain: Style = { bold: (s) => s, dim: (s) => s }

/** The menu's lines (no trailing newline); the hint line only while it is open. */
export const render = <A>(title: string, items: ReadonlyArray<Item<A>>, state: State, style: Style = plain): Array<string> => [
  style.bold(title),
  ...items.map((item, i) => {
    const here = i === state.cursor
    const number = i < 9 ? `${i + 1}.` : "  "
    const text = `${here ? "❯" : " "} ${number} ${item.label}`
    return (here ? style.bold(text) : text) + (item.note === undefined ? "" : `  ${style.dim(item.note)}`)
  }),
  ...(state.outcome === "open" ? [style.dim("↑/↓ to move, Enter to choose, Esc to cancel")] : [])
]

/**
 * Shows the menu and waits for a choice: `Some(value)`, or `None` when cancelled (or when
 * stdin ends). Needs stdin on a terminal; raw mode is restored however it ends.
 */
export const select = <A>(title: string, items: ReadonlyArray<Item<A>>, style: Style = plain): Effect.Effect<Option.Option<A>> =>
  Effect.async<Option.Option<A>>((resume) => {
    const stdin = process.stdin
    const out = process.stderr
    let state = initial
    let drawn = 0
    const draw = () => {
      const lines = render(title, items, state, style)
      // Back to the menu's first line, clear below, draw again.
      out.write((drawn > 0 ? `\u001b[${drawn}A\r\u001b[J` : "") + lines.join("\n") + "\n")
      drawn = lines.length
    }
    const cleanup = () => {
      stdin.off("data", onData)
      stdin.off("end", onEnd)
      if (stdin.isTTY) stdin.setRawMode(false)
      stdin.pause()
      out.write("\u001b[?25h")
    }
    const finish = () => {
      draw()
      cleanup()
      const item = items[state.cursor]
      resume(Effect.succeed(state.outcome === "chosen" && item !== undefined ? Option.some(item.value) : Option.none()))
    }
    const onData = (chunk: Buffer) => {
      for (const key of parseKeys(chunk.toString("utf8"))) {
        state = step(state, key, items.length)
        if (state.outcome !== "open") return finish()
      }
      draw()
    }
    const onEnd = () => {
      state = { ...state, outcome: "cancelled" }
      finish()
    }
    if (stdin.isTTY) stdin.setRawMode(true)
    out.write("\u001b[?25l")
    draw()
    stdin.on("data", onData)
    stdin.once("end", onEnd)
    stdin.resume()
    return Effect.sync(cleanup)
  })

/** A yes/no question on the terminal (stderr), answered with a line; only "y" or "yes" is yes, and a closed stdin is no. */
export const confirm = (question: string): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const stdin = process.stdin
    let answer = ""
    const done = (yes: boolean) => {
      cleanup()
      process.stderr.write("\n")
      resume(Effect.succeed(yes))
    }
    const onData = (chunk: Buffer) => {
      for (const c of chunk.toString("utf8")) {
        if (c === "\r" || c === "\n") return done(/^\s*y(es)?\s*$/i.test(answer))
        // Ctrl-C, Ctrl-D, Esc: no.
        if (c === "\u0003" || c === "\u0004" || c === "\u001b") return done(false)
        answer = c === "\u007f" ? answer.slice(0, -1) : answer + c
        process.stderr.write(c === "\u007f" ? "\b \b" : c)
      }
    }
    const onEnd = () => done(false)
    const cleanup = () => {
      stdin.off("data", onData)
      stdin.off("end", onEnd)
      if (stdin.isTTY) stdin.setRawMode(false)
      stdin.pause()
    }
    process.stderr.write(question)
    if (stdin.isTTY) stdin.setRawMode(true)
    stdin.on("data", onData)
    stdin.once("end", onEnd)
    stdin.resume()
    return Effect.sync(cleanup)
  })
