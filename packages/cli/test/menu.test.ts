/** The menu's key handling and drawing, without a terminal (test/menu.test.ts drives it on one). */
import { describe, expect, it } from "@effect/vitest"
import { initial, parseKeys, render, type State, step } from "../src/internal/menu.js"

const press = (input: string, count: number, from: State = initial): State =>
  parseKeys(input).reduce((s, k) => step(s, k, count), from)

describe("menu keys", () => {
  it("reads arrows (CSI and SS3), j/k, digits, Enter (CR or LF) and the cancel keys; ignores the rest", () => {
    expect(parseKeys("\u001b[A\u001b[B\u001bOA\u001bOBkj")).toEqual([
      { _tag: "Up" },
      { _tag: "Down" },
      { _tag: "Up" },
      { _tag: "Down" },
      { _tag: "Up" },
      { _tag: "Down" }
    ])
    expect(parseKeys("3\r\n")).toEqual([{ _tag: "Digit", n: 3 }, { _tag: "Enter" }, { _tag: "Enter" }])
    for (const cancel of ["\u001b", "q", "\u0003", "\u0004"]) expect(parseKeys(cancel)).toEqual([{ _tag: "Cancel" }])
    expect(parseKeys("x0 \u001b[C")).toEqual([])
  })

  it("moves with wrap-around, jumps to a digit's line, chooses with Enter", () => {
    expect(press("\u001b[B\u001b[B", 3).cursor).toBe(2)
    expect(press("\u001b[B\u001b[B\u001b[B", 3).cursor).toBe(0)
    expect(press("\u001b[A", 3).cursor).toBe(2)
    expect(press("3", 4)).toEqual({ cursor: 2, outcome: "open" })
    expect(press("9", 4).cursor).toBe(0) // no line 9: nothing moves
    expect(press("2\r", 4)).toEqual({ cursor: 1, outcome: "chosen" })
  })

  it("cancel ends it, and nothing after the end changes it", () => {
    const cancelled = press("j\u001b", 3)
    expect(cancelled).toEqual({ cursor: 1, outcome: "cancelled" })
    expect(press("j\r", 3, cancelled)).toEqual(cancelled)
    expect(press("\r", 3, press("\r", 3))).toEqual({ cursor: 0, outcome: "chosen" })
  })

  it("draws the title, numbered lines with the cursor and notes, and the hint only while open", () => {
    const items = [{ label: "A", value: 1 }, { label: "B", note: "✓ usable now", value: 2 }]
    expect(render("Pick:", items, { cursor: 1, outcome: "open" })).toEqual([
      "Pick:",
      "  1. A",
      "❯ 2. B  ✓ usable now",
      "↑/↓ to move, Enter to choose, Esc to cancel"
    ])
    expect(render("Pick:", items, { cursor: 0, outcome: "chosen" })).toEqual(["Pick:", "❯ 1. A", "  2. B  ✓ usable now"])
  })
})
