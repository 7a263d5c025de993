// Bundles the hosted example with esbuild (no TypeScript runner needed) and runs it.
//   node packages/server/examples/run.mjs           build, then run (pnpm example:hosted)
//   node packages/server/examples/run.mjs --build   build only; prints the bundle's path
import { build } from "esbuild"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(new URL(".", import.meta.url))
export const outfile = `${here}../dist/hosted.mjs`
await build({
  entryPoints: [`${here}hosted.ts`],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  logLevel: "warning",
  // libsql loads a native module for the platform: required from node_modules at run time.
  external: ["@libsql/client"],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
})
if (process.argv[2] === "--build") {
  console.log(outfile)
} else {
  const { status } = spawnSync(process.execPath, [outfile, ...process.argv.slice(2)], { stdio: "inherit" })
  process.exit(status ?? 1)
}
