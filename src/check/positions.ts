/**
 * Where a value sits in a manifest file: the line and column of a field's key, found by walking the
 * YAML syntax tree that parsed it (the `yaml` package keeps every node's offsets). SARIF results,
 * workflow annotations and JUnit reports point at the `image:` line this gives.
 */
import { isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, type Scalar } from 'yaml'

/** 1-based, as editors and GitHub count. */
export interface Position {
  line: number
  column: number
}

export type FieldPath = ReadonlyArray<string | number>

/**
 * The key of the last step (`image:`), or the item itself for a sequence index; undefined where
 * the path leaves the tree (a key written twice resolves as the parser did: the last one).
 */
export function positionIn(root: Node | null, path: FieldPath, lines: LineCounter): Position | undefined {
  let node: unknown = root
  let at: number | undefined
  for (const step of path) {
    if (typeof step === 'number') {
      if (!isSeq(node)) return undefined
      node = node.items[step]
      at = isNodeWithRange(node) ? node.range[0] : undefined
    } else {
      if (!isMap(node)) return undefined
      const pair = node.items.findLast((p) => (isScalar(p.key) ? String(p.key.value) : p.key) === step)
      if (pair === undefined) return undefined
      at = isNodeWithRange(pair.key) ? pair.key.range[0] : undefined
      node = pair.value
    }
    if (at === undefined) return undefined
  }
  if (at === undefined) return undefined
  const { line, col } = lines.linePos(at)
  return { line, column: col }
}

function isNodeWithRange(v: unknown): v is { range: [number, number, number] } {
  return typeof v === 'object' && v !== null && Array.isArray((v as { range?: unknown }).range)
}

/**
 * `helm template` heads each document with `# Source: CHART/templates/FILE.yaml`: the file a
 * rendered finding comes from. `before` is the text between the previous document and this one's
 * contents.
 */
export function helmSource(before: string): string | undefined {
  return /^#\s*Source:\s*(\S.*?)\s*$/m.exec(before)?.[1]
}

/**
 * The scalar a path leads to, where it can be edited in the text alone: undefined through an alias
 * or a merge key, and for an anchored scalar (its aliases elsewhere would change with it).
 */
export function scalarAt(root: Node | null, path: FieldPath): Scalar | undefined {
  let node: unknown = root
  for (const step of path) {
    if (typeof step === 'number') {
      if (!isSeq(node)) return undefined
      node = node.items[step]
    } else {
      if (!isMap(node)) return undefined
      const pair = node.items.findLast((p) => (isScalar(p.key) ? String(p.key.value) : p.key) === step)
      if (pair === undefined) return undefined
      node = pair.value
    }
    if (isAlias(node)) return undefined
  }
  if (!isScalar(node) || node.anchor !== undefined || node.range === undefined || node.range === null) return undefined
  return node
}

/** A string written as the scalar was (plain, single or double quoted); undefined for a block scalar. */
export function scalarText(scalar: Scalar, value: string): string | undefined {
  switch (scalar.type) {
    case 'PLAIN':
      return value
    case 'QUOTE_DOUBLE':
      return JSON.stringify(value)
    case 'QUOTE_SINGLE':
      return `'${value.replaceAll("'", "''")}'`
    default:
      return undefined
  }
}
