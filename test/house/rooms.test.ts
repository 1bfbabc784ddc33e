// The house's one rule, checked on the source: imports run one way, from the entry down to the
// pure rooms at the bottom, and no command imports another. A new room must be given its floor
// here, where a reviewer sees it; an import that runs back up fails with the file that made it.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url))

/** Each room's floor: a room may import only rooms on lower floors (README: the map of the code). */
const FLOORS: Readonly<Record<string, number>> = {
  'kubectl-pullguard.ts': 13,
  'github-action.ts': 13,
  'cli.ts': 12,
  serve: 11,
  check: 11,
  diagnose: 11,
  audit: 11,
  commands: 10,
  server: 9,
  auditor: 8,
  admission: 7,
  policy: 6,
  providers: 5,
  credentials: 4,
  kube: 3,
  mirrors: 3,
  signatures: 3,
  pools: 3,
  registry: 2,
  reference: 1,
  cache: 1,
  async: 1,
  go: 1,
  reload: 1,
  log: 1,
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

/** `commands` for src/commands/flags.ts, `cli.ts` for src/cli.ts. */
function roomOf(file: string): string {
  return relative(SRC, file).split('/')[0]!
}

/** Every relative import (static, dynamic, type-only) in `text` of `file`, resolved to the source file. */
function importsIn(file: string, text: string): string[] {
  return [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) =>
    resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts'),
  )
}

const files = sources(SRC)
const arrows = files.flatMap((from) =>
  importsIn(from, readFileSync(from, 'utf8'))
    .map((to) => ({ from, to, a: roomOf(from), b: roomOf(to) }))
    .filter(({ a, b }) => a !== b),
)

t.test('every room has a floor', async (t) => {
  const rooms = [...new Set(files.map(roomOf))].sort()
  t.same(
    rooms.filter((r) => FLOORS[r] === undefined),
    [],
    'a new folder (or a file straight in src/) is placed in FLOORS',
  )
})

t.test('imports run one way: down to a lower floor', async (t) => {
  const up = arrows
    .filter(({ a, b }) => (FLOORS[a] ?? 0) <= (FLOORS[b] ?? 0))
    .map(({ from, to }) => `${relative(SRC, from)} -> ${relative(SRC, to)}`)
  t.same(up, [], 'no import runs sideways or back up')
})

t.test('no command imports another command or the entry', async (t) => {
  const commands = new Set(['serve', 'check', 'diagnose', 'audit'])
  const leaning = arrows
    .filter(({ a, b }) => commands.has(a) && (commands.has(b) || b === 'cli.ts'))
    .map(({ from, to }) => `${relative(SRC, from)} -> ${relative(SRC, to)}`)
  t.same(leaning, [])
})

t.test('the rule can fail: an import back up is seen', async (t) => {
  // The scanner itself, on a line written as the code writes imports: a check that cannot fail proves nothing.
  const probe = join(SRC, 'registry', 'probe.ts')
  const text = `import type { Judge } from '../policy/judge.js'\nconst { buildServer } = await import('../server/app.js')`
  const found = importsIn(probe, text).map(roomOf)
  t.same(found, ['policy', 'server'])
  t.ok(
    found.every((b) => (FLOORS[b] ?? 0) > (FLOORS['registry'] ?? 0)),
    'both point up from registry/',
  )
})
