// Bundles the example runtime with esbuild and runs it (scripts/example.mjs).
import { fileURLToPath } from "node:url"
import { runExample } from "../../../scripts/example.mjs"

await runExample(fileURLToPath(new URL("runtime.ts", import.meta.url)))
