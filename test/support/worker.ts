/** A child-process script for cross-process tests, bundled whole (effect and all) so each child starts fast. */
import * as esbuild from "esbuild"

export const bundleWorker = async (entry: string, outfile: string): Promise<void> => {
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
    // Bundled CommonJS dependencies may `require` Node built-ins.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
  })
}
