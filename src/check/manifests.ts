/**
 * Reads the manifests given with -f: files, directories (walked for *.yaml, *.yml, *.json, in name
 * order so the report is stable), or `-` for stdin. Every YAML stream may hold many documents. A
 * document that does not parse is an InputError naming the file and line: the CLI exits 2.
 */
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import yaml from 'js-yaml'
import { InputError } from '../commands/errors.js'

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

/** JSON is YAML, so one parser reads both; empty documents (`---` twice) are skipped. */
export function parse(source: string, text: string): Document[] {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES)
    throw new InputError(`${source}: larger than ${MAX_MANIFEST_BYTES} bytes`)
  let values: unknown[]
  try {
    values = yaml.loadAll(text, undefined, { filename: source })
  } catch (err) {
    if (err instanceof yaml.YAMLException) {
      // mark.line is 0-based; editors count from 1.
      const line = err.mark === undefined ? '' : `:${err.mark.line + 1}`
      throw new InputError(`${source === '-' ? '(stdin)' : source}${line}: invalid YAML: ${err.reason}`)
    }
    throw err
  }
  return values.flatMap((value, i) => (value === null || value === undefined ? [] : [{ source, index: i + 1, value }]))
}
