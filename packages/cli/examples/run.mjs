// Bundles the example REPL with esbuild and runs it (scripts/example.mjs).
import { fileURLToPath } from "node:url"
import { runExample } from "../../../scripts/example.mjs"

await runExample(fileURLToPath(new URL("repl.ts", import.meta.url)), { external: ["libsql", "pg-native", "@napi-rs/keyring"] })
