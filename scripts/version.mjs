#!/usr/bin/env node
// Versions in lockstep: every package of the workspace has the root's version, and
// CHANGELOG.md's "Unreleased" section becomes that version's. A short script rather than
// @changesets/cli: the packages are always released together (their versions would only
// drift apart), so per-package change files and bump levels add steps and nothing else.
//
//   node scripts/version.mjs 0.2.0    set every version to 0.2.0, date the changelog section
//   node scripts/version.mjs --check  exit 1 unless every package has the root's version
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const manifests = [
  path.join(root, "package.json"),
  ...fs.readdirSync(path.join(root, "packages"))
    .map((dir) => path.join(root, "packages", dir, "package.json"))
    .filter((file) => fs.existsSync(file))
]
const read = (file) => JSON.parse(fs.readFileSync(file, "utf8"))
const arg = process.argv[2]

if (arg === "--check") {
  const expected = read(manifests[0]).version
  const off = manifests.slice(1).filter((file) => read(file).version !== expected)
  for (const file of off) console.error(`${path.relative(root, file)}: ${read(file).version}, not ${expected}`)
  process.exit(off.length === 0 ? 0 : 1)
}
if (arg === undefined || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(arg)) {
  console.error("usage: node scripts/version.mjs <x.y.z> | --check")
  process.exit(2)
}
for (const file of manifests) {
  const manifest = read(file)
  manifest.version = arg
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n")
}
const changelog = path.join(root, "CHANGELOG.md")
const text = fs.readFileSync(changelog, "utf8")
if (!text.includes("## Unreleased")) {
  console.error("CHANGELOG.md has no \"## Unreleased\" section to release")
  process.exit(1)
}
const today = new Date().toISOString().slice(0, 10)
fs.writeFileSync(changelog, text.replace("## Unreleased", `## Unreleased\n\n## ${arg} — ${today}`))
console.log(`every package is now ${arg}; CHANGELOG.md has its section`)
