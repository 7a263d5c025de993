// Bundles the CLI into one ESM file. Node built-ins stay external; everything else is inlined.
import { build } from "esbuild"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(new URL(".", import.meta.url))
await build({
  entryPoints: [`${here}src/main.ts`],
  outfile: `${here}dist/agent-auth.mjs`,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  minify: false,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
  // Some dependencies still call require(); give the ESM bundle one.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
})
