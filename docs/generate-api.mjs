// Writes docs/api.md: every export of each package's entry point (packages/*/src/index.ts),
// with its signature and its doc comment, read with the TypeScript compiler API.
//   node docs/generate-api.mjs           write docs/api.md
//   node docs/generate-api.mjs --check   exit 1 when docs/api.md differs from what it would write
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("..", import.meta.url))
const out = path.join(root, "docs", "api.md")

/** The packages a runtime imports, in the order a reader meets them. */
const packages = [
  ["@agent-auth/core", "packages/core/src/index.ts"],
  ["@agent-auth/node", "packages/node/src/index.ts"],
  ["@agent-auth/ai", "packages/ai/src/index.ts"],
  ["@agent-auth/mcp", "packages/mcp/src/index.ts"],
  ["@agent-auth/sql", "packages/sql/src/index.ts"],
  ["@agent-auth/testing", "packages/testing/src/index.ts"],
  ["@agent-auth/server", "packages/server/src/index.ts"]
]

const { config } = ts.readConfigFile(path.join(root, "tsconfig.base.json"), ts.sys.readFile)
const { options } = ts.parseJsonConfigFileContent(
  { ...config, compilerOptions: { ...config.compilerOptions, composite: false, declaration: false, noEmit: true } },
  ts.sys,
  root
)
const program = ts.createProgram(packages.map(([, file]) => path.join(root, file)), options)
const checker = program.getTypeChecker()

const oneLine = (text) => text.replace(/\s+/g, " ").trim()
const cut = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)
const docText = (node) => {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc)
  return docs.map((d) => ts.getTextOfJSDocComment(d.comment) ?? "")
}
const symbolDoc = (symbol) => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim()

/** Source text as written, `export` dropped, indentation kept; at most `max` lines. */
const asWritten = (node, max = 40) => {
  const src = node.getSourceFile()
  const lines = node.getText(src).replace(/^export\s+/, "").split("\n")
  const indent = Math.min(...lines.slice(1).filter((l) => l.trim()).map((l) => l.match(/^ */)[0].length), Infinity)
  const dedented = [lines[0], ...lines.slice(1).map((l) => (Number.isFinite(indent) ? l.slice(Math.max(0, indent - 2)) : l))]
  return dedented.length > max ? [...dedented.slice(0, max), "  …"].join("\n") : dedented.join("\n")
}

/** A file's own doc comment: the JSDoc blocks before its first statement that are not that statement's. */
const fileHeader = (source) => {
  const first = source.statements[0]
  if (!first) return []
  const ranges = ts.getLeadingCommentRanges(source.text, 0) ?? []
  const jsdoc = ranges
    .map((r) => source.text.slice(r.pos, r.end))
    .filter((c) => c.startsWith("/**"))
  // An import has no doc of its own: every block is the file's. Otherwise the last block is the statement's.
  const own = ts.isImportDeclaration(first) ? jsdoc : jsdoc.slice(0, -1)
  return own.map((c) =>
    c.replace(/^\/\*\*\s?/, "").replace(/\s*\*\/$/, "").split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n").trim()
  )
}

/** A declaration's signature, from its source: the part a reader needs, on few lines. */
const signature = (decl) => {
  const src = decl.getSourceFile()
  const text = (node) => oneLine(node.getText(src))
  if (ts.isVariableDeclaration(decl)) {
    const name = decl.name.getText(src)
    if (decl.type) return `const ${name}: ${cut(text(decl.type), 300)}`
    const init = decl.initializer
    if (init && (ts.isArrowFunction(init) || ts.isFunctionExpression(init))) {
      const typeParams = init.typeParameters ? `<${init.typeParameters.map(text).join(", ")}>` : ""
      const ret = init.type ? `: ${text(init.type)}` : ""
      return cut(`const ${name} = ${typeParams}(${init.parameters.map(text).join(", ")})${ret} => …`, 400)
    }
    const type = checker.typeToString(checker.getTypeAtLocation(decl), decl, ts.TypeFormatFlags.NoTruncation)
    return `const ${name}: ${cut(oneLine(type), 300)}`
  }
  if (ts.isFunctionDeclaration(decl)) {
    const head = text(decl).replace(/\{.*$/, "").trim()
    return cut(head, 400)
  }
  if (ts.isClassDeclaration(decl)) {
    // Schema classes declare their fields in the heritage clause: show it as written.
    const heritage = decl.heritageClauses ? ` ${decl.heritageClauses.map((h) => asWritten(h)).join(" ")}` : ""
    return `class ${decl.name?.getText(src) ?? ""}${heritage}`
  }
  if (ts.isInterfaceDeclaration(decl)) {
    const heritage = decl.heritageClauses ? ` ${decl.heritageClauses.map(text).join(" ")}` : ""
    const members = decl.members.map((m) => {
      const doc = docText(m).filter((d) => d.length > 0)
      const comment = doc.length > 0 ? `  /** ${oneLine(doc.join(" "))} */\n` : ""
      return `${comment}  ${cut(text(m), 300)}`
    })
    const params = decl.typeParameters ? `<${decl.typeParameters.map(text).join(", ")}>` : ""
    return `interface ${decl.name.getText(src)}${params}${heritage} {\n${members.join("\n")}\n}`
  }
  if (ts.isTypeAliasDeclaration(decl)) return asWritten(decl)
  if (ts.isModuleDeclaration(decl)) return `namespace ${decl.name.getText(src)}`
  if (ts.isEnumDeclaration(decl)) return `enum ${decl.name.getText(src)}`
  return cut(text(decl), 200)
}

const kindOf = (decl) =>
  ts.isClassDeclaration(decl)
    ? "class"
    : ts.isInterfaceDeclaration(decl)
    ? "interface"
    : ts.isTypeAliasDeclaration(decl)
    ? "type"
    : ts.isFunctionDeclaration(decl)
    ? "function"
    : ts.isVariableDeclaration(decl)
    ? "const"
    : "export"

const resolve = (symbol) => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol)

/** One exported name: heading, signatures (one per declaration: a const and a type may share a name), doc. */
const entry = (name, symbol, level) => {
  const target = resolve(symbol)
  const decls = (target.declarations ?? []).filter((d) => !ts.isSourceFile(d))
  const kinds = [...new Set(decls.map(kindOf))].join(", ")
  const lines = [`${"#".repeat(level)} \`${name}\`${kinds ? ` (${kinds})` : ""}`, ""]
  const doc = symbolDoc(target)
  if (decls.length > 0) lines.push("```ts", ...decls.map(signature), "```", "")
  if (doc) lines.push(doc, "")
  return lines
}

const md = [
  "# API reference",
  "",
  "Generated from the doc comments of each package's exports by `node docs/generate-api.mjs`;",
  "do not edit by hand (a test fails when this file is out of date). Code in doc comments is",
  "quoted as written; the type-checked examples are in the [user guide](user-guide.md).",
  ""
]
md.push("Packages: " + packages.map(([name]) => `[\`${name}\`](#${name.replace(/[@/]/g, "").replace(/\s+/g, "-")})`).join(", "), "")

for (const [pkg, file] of packages) {
  const source = program.getSourceFile(path.join(root, file))
  const moduleSymbol = checker.getSymbolAtLocation(source)
  md.push(`## ${pkg}`, "")
  const intro = fileHeader(source)
  if (intro.length > 0) md.push(...intro, "")
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    const target = resolve(symbol)
    const isModule = (target.declarations ?? []).some(ts.isSourceFile)
    if (!isModule) {
      md.push(...entry(symbol.name, symbol, 3))
      continue
    }
    // `export * as Name from "./Name.js"`: the module, then each of its exports.
    const exportDecl = (symbol.declarations ?? [])[0]
    const statement = exportDecl && ts.isNamespaceExport(exportDecl) ? exportDecl.parent : exportDecl
    const doc = statement ? docText(statement).at(-1) ?? "" : ""
    const moduleFile = (target.declarations ?? []).find(ts.isSourceFile)
    md.push(`### ${symbol.name}`, "", `\`import { ${symbol.name} } from "${pkg}"\` — [source](../${path.relative(root, moduleFile.fileName)})`, "")
    if (doc.trim()) md.push(doc.trim(), "")
    const header = fileHeader(moduleFile)
    if (header.length > 0) md.push(...header, "")
    for (const member of checker.getExportsOfModule(target)) md.push(...entry(`${symbol.name}.${member.name}`, member, 4))
  }
}

const text = md.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n"
if (process.argv.includes("--check")) {
  const current = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : ""
  if (current !== text) {
    process.stderr.write("docs/api.md is out of date: run `node docs/generate-api.mjs`\n")
    process.exit(1)
  }
} else {
  fs.writeFileSync(out, text)
}
