import { defineConfig } from "vitest/config"

// One run covers every package's unit tests and the cross-package suites in test/.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    globalSetup: ["test/globalSetup.ts"],
    pool: "forks",
    sequence: { concurrent: false }
  }
})
