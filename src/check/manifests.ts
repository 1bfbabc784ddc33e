/**
 * Reads the manifests given with -f: files, directories (walked for *.yaml, *.yml, *.json, in name
 * order so the report is stable), or `-` for stdin. Every YAML stream may hold many documents. A
 * document that does not parse is an InputError naming the file and line: the CLI exits 2. Each
 * document keeps its syntax tree, so a finding can name the line of its `image:` field.
 */
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { LineCounter, parseAllDocuments } from 'yaml'
import { InputError } from '../commands/errors.js'
import { helmSource, positionIn, scalarAt, scalarText, type FieldPath, type Position } from './positions.js'

/** A manifest file larger than this is not a manifest (the API server refuses objects over ~1.5 MiB). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024
/** Directories deeper than this are a symlink loop or not a manifest tree. */
const MAX_DEPTH = 32
const MANIFEST_FILE = /\.(ya?ml|json)$/i

export interface Document {
  /** The file it came from (`-` for stdin). */
  source: string
  /** 1-based position in its file. */
  index: number
  value: unknown
  /** Where a field of this document sits in its file; undefined where the path leads nowhere. */
  positionOf(path: FieldPath): Position | undefined
  /**
   * Replaces a string in the document's text (an image), every other byte of the file as it was;
   * false where it cannot be done in the text alone (an alias, a merge key, an anchored value).
   */
  replaceString(path: FieldPath, value: string): boolean
  /** The text the document came from, with its edits: `check --pin-digests` prints these. */
  origin: SourceText
  /** The chart template a `helm template` document was rendered from (its `# Source:` line). */
  renderedFrom?: string
}

/** A file's (or stdin's) text and the replacements made in it. */
export interface SourceText {
  source: string
  text: string
  edits: Array<{ start: number; end: number; value: string }>
}

export function readDocuments(inputs: readonly string[], readStdin: () => string): Document[] {
  const out: Document[] = []
  for (const input of inputs) {
    if (input === '-') {
      out.push(...parse('-', readStdin()))
      continue
    }
    for (const file of expand(input)) out.push(...parse(file, readText(file)))
  }
  return out
}

/** A file as itself; a directory as its manifest files, recursively, in name order. */
function expand(path: string, depth = 0): string[] {
  let stat: Stats
  try {
    stat = statSync(path)
  } catch (err) {
    throw new InputError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  if (!stat.isDirectory()) return [path]
  if (depth >= MAX_DEPTH) throw new InputError(`${path}: directories nested deeper than ${MAX_DEPTH}`)
  const names = readdirSync(path).sort()
  const files: string[] = []
  for (const name of names) {
    const child = join(path, name)
    const isDir = statSync(child).isDirectory()
    if (isDir) files.push(...expand(child, depth + 1))
    else if (MANIFEST_FILE.test(name)) files.push(child)
  }
  return files
}

function readText(file: string): string {
  let size: number
  try {
    size = statSync(file).size
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  if (size > MAX_MANIFEST_BYTES) throw new InputError(`${file}: larger than ${MAX_MANIFEST_BYTES} bytes`)
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

/**
 * JSON is YAML, so one parser reads both; empty documents (`---` twice) are skipped. YAML 1.2's
 * core schema with merge keys (`<<`), as before; a key written twice is an error, as kubectl's is.
 */
export function parse(source: string, text: string): Document[] {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES)
    throw new InputError(`${source}: larger than ${MAX_MANIFEST_BYTES} bytes`)
  const lines = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lines, merge: true, prettyErrors: false })
  const origin: SourceText = { source, text, edits: [] }
  const name = source === '-' ? '(stdin)' : source
  const out: Document[] = []
  let previousEnd = 0
  for (const [i, doc] of (Array.isArray(docs) ? docs : []).entries()) {
    const error = doc.errors[0]
    if (error !== undefined) {
      const line = lines.linePos(error.pos[0]).line
      throw new InputError(`${name}:${line}: invalid YAML: ${firstLine(error.message)}`)
    }
    const before = text.slice(previousEnd, doc.contents?.range[0] ?? previousEnd)
    previousEnd = doc.range[2]
    let value: unknown
    try {
      value = doc.toJS({ maxAliasCount: 1000 })
    } catch (err) {
      // An alias bomb ("excessive alias count") or a reference to an unknown anchor.
      throw new InputError(`${name}: document ${i + 1}: invalid YAML: ${(err as Error).message}`)
    }
    if (value === null || value === undefined) continue
    const root = doc.contents
    const renderedFrom = helmSource(before)
    out.push({
      source,
      index: i + 1,
      value,
      positionOf: (path) => positionIn(root, path, lines),
      replaceString: (path, replacement) => {
        const scalar = scalarAt(root, path)
        const written = scalar === undefined ? undefined : scalarText(scalar, replacement)
        if (scalar === undefined || written === undefined || typeof scalar.value !== 'string') return false
        origin.edits.push({ start: scalar.range![0], end: scalar.range![1], value: written })
        return true
      },
      origin,
      ...(renderedFrom === undefined ? {} : { renderedFrom }),
    })
  }
  return out
}

/** The parser's messages end with a picture of the line; the report says file:line instead. */
function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
}

/**
 * The texts the documents came from, in order, each with its replacements and nothing else
 * changed; one stream, a `---` between two texts where the next does not start with one.
 */
export function toStream(documents: readonly Document[]): string {
  const origins = [...new Set(documents.map((d) => d.origin))]
  return origins
    .map((o, i) => {
      let text = o.text
      for (const e of [...o.edits].sort((a, b) => b.start - a.start))
        text = text.slice(0, e.start) + e.value + text.slice(e.end)
      if (!text.endsWith('\n')) text += '\n'
      return i === 0 || /^---(\s|$)/.test(text) ? text : `---\n${text}`
    })
    .join('')
}
