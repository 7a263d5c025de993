/**
 * The docs stay true: every TypeScript example in docs/*.md type-checks against the
 * packages (with the repository's compiler options), every `config.json` example decodes,
 * the admin guide names every config.json field, relative links resolve, and docs/api.md
 * is what docs/generate-api.mjs writes from the current doc comments.
 */
import { AuthConfig } from "@agent-auth/core"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("..", import.meta.url))
const docs = path.join(root, "docs")
/** The hand-written pages (api.md is generated and quotes doc comments as written). */
const pages = fs.readdirSync(docs).filter((f) => f.endsWith(".md") && f !== "api.md").sort()
const read = (page: string) => fs.readFileSync(path.join(docs, page), "utf8")

/** Fenced blocks whose info string starts with `lang`, with the line each starts on. */
const blocks = (page: string, lang: string): Array<{ readonly code: string; readonly line: number }> => {
  const text = read(page)
  const out: Array<{ code: string; line: number }> = []
  for (const m of text.matchAll(/^```([\w-]*)[^\n]*\n([\s\S]*?)^```/gm)) {
    if (m[1] === lang) out.push({ code: m[2]!, line: text.slice(0, m.index).split("\n").length })
  }
  return out
}

/** Type-check sources held in memory as files in docs/ (so packages resolve as they would for a reader). */
const typeCheck = (files: ReadonlyMap<string, string>): Map<string, Array<string>> => {
  const { config } = ts.readConfigFile(path.join(root, "tsconfig.base.json"), ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(
    {
      ...config,
      compilerOptions: {
        ...config.compilerOptions,
        composite: false,
        declaration: false,
        declarationMap: false,
        emitDeclarationOnly: false,
        noEmit: true,
        // An example is a fragment: a value it shows without using is fine.
        noUnusedLocals: false,
        noUnusedParameters: false
      }
    },
    ts.sys,
    root
  )
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, language, onError, create) =>
    files.has(name) ? ts.createSourceFile(name, files.get(name)!, language, true) : getSourceFile(name, language, onError, create)
  const fileExists = host.fileExists.bind(host)
  host.fileExists = (name) => files.has(name) || fileExists(name)
  const readFile = host.readFile.bind(host)
  host.readFile = (name) => files.get(name) ?? readFile(name)
  const program = ts.createProgram([...files.keys()], options, host)
  const result = new Map<string, Array<string>>()
  for (const name of files.keys()) {
    const diagnostics = ts.getPreEmitDiagnostics(program, program.getSourceFile(name))
    result.set(
      name,
      diagnostics.map((d) => {
        const where = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0
        return `line ${where}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
      })
    )
  }
  return result
}

describe("docs", () => {
  it("every TypeScript example type-checks (and a broken one would be caught)", () => {
    const files = new Map<string, string>()
    const origin = new Map<string, string>()
    for (const page of pages) {
      blocks(page, "ts").forEach((b, i) => {
        const name = path.join(docs, `__example_${page.replace(/\W/g, "_")}_${i + 1}.ts`)
        files.set(name, b.code)
        origin.set(name, `${page}:${b.line}`)
      })
    }
    expect(files.size).toBeGreaterThanOrEqual(4)
    // The control: it must fail, or the check checks nothing.
    const control = path.join(docs, "__example_control.ts")
    files.set(control, `import { CredentialResolver } from "@agent-auth/core"\nexport const n: number = CredentialResolver.firstAccount\n`)
    const result = typeCheck(files)
    expect(result.get(control)!.join("\n")).toMatch(/not assignable to type 'number'/)
    for (const [name, errors] of result) {
      if (name === control) continue
      expect(errors, `the example at docs/${origin.get(name)}`).toEqual([])
    }
  }, 180_000)

  it("every config.json example decodes with the same rules as config.json itself", () => {
    let count = 0
    for (const page of pages) {
      for (const b of blocks(page, "json")) {
        count++
        const decoded = AuthConfig.parseConfigFile(b.code, `docs/${page}:${b.line}`)
        expect(Either.isRight(decoded) ? "ok" : decoded.left.message).toBe("ok")
      }
    }
    expect(count).toBeGreaterThanOrEqual(3)
  })

  it("the admin guide names every field of config.json and of a provider entry", () => {
    const guide = read("admin-guide.md")
    const fields = [...Object.keys(AuthConfig.ConfigFile.fields), ...Object.keys(AuthConfig.ProviderOverride.fields)]
    expect(fields.length).toBeGreaterThan(20)
    expect(fields.filter((f) => !guide.includes(`\`${f}\``))).toEqual([])
  })

  it("relative links point at files that exist", () => {
    for (const page of [...pages, "api.md"]) {
      for (const m of read(page).matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)) {
        expect(fs.existsSync(path.resolve(docs, m[1]!)), `${page} links ${m[1]}`).toBe(true)
      }
    }
  })

  it("docs/api.md is what docs/generate-api.mjs writes from the current doc comments", async () => {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(process.execPath, [path.join(docs, "generate-api.mjs"), "--check"], { cwd: root }, (error, _stdout, stderr) =>
        resolve({ code: error === null ? 0 : (error as { code?: number }).code ?? 1, stderr }))
    )
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
  }, 180_000)
})
