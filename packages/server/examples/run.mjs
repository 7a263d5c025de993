// Bundles the hosted example (pnpm example:hosted; --build only builds) with esbuild and runs it (scripts/example.mjs).
import { fileURLToPath } from "node:url"
import { runExample } from "../../../scripts/example.mjs"

await runExample(fileURLToPath(new URL("hosted.ts", import.meta.url)), { external: ["@libsql/client"] })
