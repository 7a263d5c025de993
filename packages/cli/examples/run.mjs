// Bundles the example REPL with esbuild (no TypeScript runner needed) and runs it.
import { build } from "esbuild"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(new URL(".", import.meta.url))
export const outfile = `${here}../dist/repl.mjs`

/** The example as one ES module; native drivers stay in node_modules, as in the CLI's bundle. */
export const bundleRepl = () =>
  build({
    entryPoints: [`${here}repl.ts`],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    logLevel: "warning",
    external: ["libsql", "pg-native", "@napi-rs/keyring"],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
  })

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bundleRepl()
  const { status } = spawnSync(process.execPath, [outfile, ...process.argv.slice(2)], { stdio: "inherit" })
  process.exit(status ?? 1)
}
