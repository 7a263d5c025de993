/** A child-process script for cross-process tests, bundled whole (effect and all) so each child starts fast. */
import { afterAll, beforeAll } from "@effect/vitest"
import * as esbuild from "esbuild"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const fixtures = NodePath.join(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "fixtures")

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

/**
 * `fixture` (a file under test/fixtures/) bundled once for the test file, in a temp folder
 * removed after it: `path()` is the script to run, once `beforeAll` has run.
 */
export const bundledFixture = (fixture: string) => {
  let dir = ""
  let script = ""
  beforeAll(async () => {
    dir = await fsp.mkdtemp(NodePath.join(os.tmpdir(), "agent-auth-worker-"))
    script = NodePath.join(dir, NodePath.basename(fixture).replace(/\.ts$/, ".mjs"))
    await bundleWorker(NodePath.join(fixtures, fixture), script)
  })
  afterAll(async () => {
    if (dir !== "") await fsp.rm(dir, { recursive: true, force: true })
  })
  return { path: () => script, dir: () => dir }
}
