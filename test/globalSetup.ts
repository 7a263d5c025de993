/** Builds the CLI bundle once before the suites that run it as a child process. */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export default function setup() {
  const root = fileURLToPath(new URL("..", import.meta.url))
  execFileSync(process.execPath, ["packages/cli/build.mjs"], { cwd: root, stdio: "inherit" })
}
