// Preloaded (`node --require`) into both sides of the memory figure: at exit, write this
// process's peak resident set size (KiB) to the file named by BENCH_MAXRSS_OUT.
"use strict"
const out = process.env.BENCH_MAXRSS_OUT
if (out) {
  process.on("exit", () => {
    require("node:fs").writeFileSync(out, String(process.resourceUsage().maxRSS))
  })
}
