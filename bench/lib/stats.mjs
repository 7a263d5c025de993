/** Small helpers shared by the bench scripts. */

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const units = [
  [1e9, "s"],
  [1e6, "ms"],
  [1e3, "µs"],
  [1, "ns"]
]

/** A value in its unit, readably: nanoseconds scaled, KiB as MiB, counts as is. */
export const show = (value, unit) => {
  if (unit === "calls") return String(value)
  if (unit === "KiB") return `${(value / 1024).toFixed(1)} MiB`
  if (unit === "ms") return `${value.toFixed(1)} ms`
  for (const [scale, name] of units) {
    if (value >= scale || scale === 1) return `${(value / scale).toFixed(value / scale >= 100 ? 0 : 2)} ${name}`
  }
  return String(value)
}

/** `name: ours / baseline = ratio` (the orientation says which is the numerator), with the target. */
export const line = (f) => {
  const [num, den] = f.orientation === "base/ours" ? [f.baseline, f.ours] : [f.ours, f.baseline]
  const ratio = f.unit === "calls" ? String(f.ratio) : `${f.ratio >= 100 ? f.ratio.toFixed(0) : f.ratio.toFixed(2)}×`
  if (f.target === undefined) return `${f.name}: ${show(num, f.unit)} / ${show(den, f.unit)} = ${ratio}  (no target)`
  const target = `${f.target.op === "<=" ? "≤" : "≥"} ${f.target.value}${f.unit === "calls" ? "" : "×"}`
  const verdict = f.informational ? `for reference; target ${target}` : `target ${target}: ${f.met ? "met" : "MISSED"}`
  return `${f.name}: ${show(num, f.unit)} / ${show(den, f.unit)} = ${ratio}  (${verdict})`
}
