// The one runner of the packages' examples: bundles a TypeScript example with esbuild (no
// TypeScript runner needed) into its package's dist/, then runs it with the given arguments.
//   node packages/<p>/examples/run.mjs [ARGS…]   build, then run
//   node packages/<p>/examples/run.mjs --build   build only; prints the bundle's path
import { build } from "esbuild"
import { spawnSync } from "node:child_process"
import * as path from "node:path"

/**
 * `entry`: the example's .ts file; `external`: packages loaded from node_modules at run time
 * (native drivers, which no bundle can hold).
 */
export const runExample = async (entry, { external = [] } = {}) => {
  const outfile = path.join(path.dirname(entry), "..", "dist", path.basename(entry).replace(/\.ts$/, ".mjs"))
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    logLevel: "warning",
    external,
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
  })
  if (process.argv[2] === "--build") {
    console.log(outfile)
    return
  }
  const { status } = spawnSync(process.execPath, [outfile, ...process.argv.slice(2)], { stdio: "inherit" })
  process.exit(status ?? 1)
}
