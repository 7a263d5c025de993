#!/usr/bin/env node
// The packages as a consumer gets them (issue 19). Packs every workspace package with pnpm
// (publishConfig applied, workspace:* replaced), checks each tarball with publint and
// @arethetypeswrong/cli, installs them with plain npm into a project outside the workspace,
// type-checks a consumer program under moduleResolution nodenext and bundler, runs it (a
// credential resolved through NodeAuth's layers), runs `npx agent-auth demo` from the
// installed CLI, and counts the copies of effect (exactly one).
//
//   node scripts/pack-check.mjs            build, pack, check (needs the npm registry)
//   node scripts/pack-check.mjs --keep     leave the temporary project for a look
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const keep = process.argv.includes("--keep")
const pnpm = ["-y", "pnpm@12.4.2"]
const failures = []
const started = Date.now()

const run = (cmd, args, options = {}) =>
  execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...options })

/** Runs a step; a failure is recorded with its output, and the later steps still run. */
const step = (name, fn) => {
  try {
    const detail = fn()
    console.log(`ok   ${name}${detail ? `: ${detail}` : ""}`)
  } catch (error) {
    const output = [error.stdout, error.stderr].filter(Boolean).join("\n").trim()
    failures.push(name)
    console.log(`FAIL ${name}\n${(output || String(error.message)).split("\n").map((l) => "     " + l).join("\n")}`)
  }
}

// The workspace packages: every folder under packages/ with a package.json.
const packages = fs.readdirSync(path.join(root, "packages"))
  .map((dir) => path.join(root, "packages", dir))
  .filter((dir) => fs.existsSync(path.join(dir, "package.json")))
  .map((dir) => ({ dir, manifest: JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) }))

const work = fs.mkdtempSync(path.join(os.tmpdir(), "agent-auth-pack-"))
const tarballs = path.join(work, "tarballs")
fs.mkdirSync(tarballs)

step("build every package's dist/ and the CLI bundle", () => {
  run("npx", [...pnpm, "build"], { cwd: root })
})

const packed = new Map()
for (const { dir, manifest } of packages) {
  step(`pack ${manifest.name}`, () => {
    const before = new Set(fs.readdirSync(tarballs))
    run("npx", [...pnpm, "pack", "--pack-destination", tarballs], { cwd: dir })
    const file = fs.readdirSync(tarballs).find((f) => !before.has(f))
    if (file === undefined) throw new Error("pnpm pack wrote no tarball")
    packed.set(manifest.name, path.join(tarballs, file))
    return `${file}, ${(fs.statSync(path.join(tarballs, file)).size / 1024).toFixed(0)} KiB`
  })
}

const bin = (name) => path.join(root, "node_modules", ".bin", name)
for (const [name, tarball] of packed) {
  step(`publint ${name}`, () => {
    const out = run(bin("publint"), ["run", tarball, "--strict"])
    return out.trim().split("\n").pop()
  })
  step(`attw ${name}`, () => {
    // ESM-only packages: the CommonJS require() resolutions do not apply.
    const out = run(bin("attw"), [tarball, "--profile", "esm-only", "--format", "ascii"])
    return out.trim().split("\n").slice(-1)[0]
  })
}

// The consumer: a project outside the workspace, installed by npm from the tarballs alone.
const app = path.join(work, "app")
fs.mkdirSync(app)
const rootManifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
const pinned = (name) => rootManifest.devDependencies[name]
fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2))
fs.writeFileSync(
  path.join(app, "consumer.ts"),
  `// A runtime that resolves the credential for a model call through agent-auth's layers.
import { CredentialResolver } from "@agent-auth/core"
import { NodeAuth } from "@agent-auth/node"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const resolver = yield* CredentialResolver.CredentialResolver
  const credential = yield* resolver.resolve("openai")
  return \`\${credential._tag} \${credential.baseUrl} \${Object.keys(credential.headers).sort().join(",")}\`
})

Effect.runPromise(program.pipe(Effect.provide(NodeAuth.layer()))).then(
  (line) => console.log(line),
  (error) => {
    console.error(String(error))
    process.exit(1)
  }
)
`
)
const tsconfig = (moduleKind, resolution) => ({
  compilerOptions: {
    target: "ES2022", module: moduleKind, moduleResolution: resolution, strict: true,
    exactOptionalPropertyTypes: true, skipLibCheck: false, types: ["node"], outDir: "out"
  },
  files: ["consumer.ts"]
})
fs.writeFileSync(path.join(app, "tsconfig.nodenext.json"), JSON.stringify(tsconfig("NodeNext", "NodeNext"), null, 2))
fs.writeFileSync(path.join(app, "tsconfig.bundler.json"), JSON.stringify(tsconfig("ESNext", "Bundler"), null, 2))

step("npm install the tarballs (core, node, cli) with effect and @effect/platform(-node)", () => {
  const wanted = ["@agent-auth/core", "@agent-auth/node", "@agent-auth/cli"].map((name) => {
    const tarball = packed.get(name)
    if (tarball === undefined) throw new Error(`${name} was not packed`)
    return tarball
  })
  run("npm", [
    "install", "--no-audit", "--no-fund", "--loglevel=error", ...wanted,
    `effect@${pinned("effect")}`, `@effect/platform@${pinned("@effect/platform")}`,
    `@effect/platform-node@${pinned("@effect/platform-node")}`,
    `typescript@${pinned("typescript")}`, `@types/node@${pinned("@types/node")}`
  ], { cwd: app })
})
for (const flavour of ["nodenext", "bundler"]) {
  step(`type-check the consumer (moduleResolution ${flavour})`, () => {
    run(path.join(app, "node_modules", ".bin", "tsc"), ["-p", `tsconfig.${flavour}.json`], { cwd: app })
  })
}
step("run the consumer: a credential resolved through NodeAuth.layer", () => {
  const home = fs.mkdtempSync(path.join(work, "home-"))
  const line = run(process.execPath, [path.join(app, "out", "consumer.js")], {
    cwd: app,
    env: { PATH: process.env.PATH, HOME: home, AGENT_AUTH_HOME: home, OPENAI_API_KEY: "sk-pack-check-0000000000" }
  }).trim()
  const expected = "ApiKey https://api.openai.com/v1 Authorization"
  if (line !== expected) throw new Error(`printed ${JSON.stringify(line)}, expected ${JSON.stringify(expected)}`)
  return line
})
step("npx agent-auth demo from the installed CLI", () => {
  const home = fs.mkdtempSync(path.join(work, "home-"))
  const out = run("npx", ["--no-install", "agent-auth", "demo"], {
    cwd: app,
    env: { PATH: process.env.PATH, HOME: home, AGENT_AUTH_HOME: home }
  })
  return (out.trim().split("\n").pop() ?? "").slice(0, 80)
})
step("the CLI's commands as a library: run([\"--version\"]) from the installed @agent-auth/cli", () => {
  const home = fs.mkdtempSync(path.join(work, "home-"))
  const out = run(process.execPath, [
    "--input-type=module",
    "-e",
    'import { run } from "@agent-auth/cli"; const code = await run(["--version"]); console.log(`exit ${code}`)'
  ], { cwd: app, env: { PATH: process.env.PATH, HOME: home, AGENT_AUTH_HOME: home } })
  if (!/^agent-auth \S+\nexit 0$/.test(out.trim())) throw new Error(`printed ${JSON.stringify(out)}`)
  return out.trim().split("\n").join(", ")
})
step("exactly one copy of effect (npm ls effect)", () => {
  const out = run("npm", ["ls", "effect", "--all", "--parseable"], { cwd: app })
  const copies = [...new Set(out.trim().split("\n").filter((l) => /node_modules[\\/]effect$/.test(l)))]
  if (copies.length !== 1) throw new Error(`${copies.length} copies:\n${copies.join("\n")}`)
  return copies[0].slice(app.length + 1)
})
step("the CLI package has no runtime dependencies", () => {
  const tarball = packed.get("@agent-auth/cli")
  const manifest = JSON.parse(run("tar", ["-xzOf", tarball, "package/package.json"]))
  const deps = Object.keys(manifest.dependencies ?? {})
  if (deps.length > 0) throw new Error(`dependencies: ${deps.join(", ")}`)
})

if (!keep) fs.rmSync(work, { recursive: true, force: true })
else console.log(`kept ${work}`)
const seconds = ((Date.now() - started) / 1000).toFixed(0)
const total = failures.length
console.log(`pack-check: ${total === 0 ? "every step passed" : `${total} step(s) failed: ${failures.join("; ")}`} (${seconds} s)`)
process.exit(total === 0 ? 0 : 1)
