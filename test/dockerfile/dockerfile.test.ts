// No container engine runs on these machines, so the Dockerfile is checked twice without one: its
// instructions are parsed and held to the rules of the image (multi-stage, LTS base, production
// dependencies only, numeric non-root user, exec-form entrypoint, nothing fetched by shell), and its
// COPY/WORKDIR/RUN steps are replayed into temporary directories — npm ci stood in for by this checkout's
// node_modules, tsc run for real — to prove that `node dist/cli.js serve` exists and starts in the layout
// the image ends up with.
import { spawnSync } from 'node:child_process'
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseServeConfig } from '../../src/serve/config.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const ENTRYPOINT = ['node', '--optimize-for-size', 'dist/cli.js', 'serve']

interface Instruction {
  keyword: string
  args: string
  line: number
}
interface Stage {
  image: string
  name: string | undefined
  body: Instruction[]
}

// Dockerfile syntax as BuildKit reads it: `#` lines are comments (also inside a continued instruction),
// a trailing backslash continues the instruction on the next line.
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = []
  let pending: { text: string; line: number } | undefined
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && pending === undefined)) return
    const continued = line.endsWith('\\')
    const part = continued ? line.slice(0, -1).trim() : line
    pending =
      pending === undefined ? { text: part, line: i + 1 } : { text: `${pending.text} ${part}`, line: pending.line }
    if (continued) return
    const m = /^(\S+)\s*(.*)$/.exec(pending.text)
    if (m) out.push({ keyword: (m[1] ?? '').toUpperCase(), args: m[2] ?? '', line: pending.line })
    pending = undefined
  })
  return out
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'))
      stages.push({ image: words[0] ?? '', name: words[1]?.toUpperCase() === 'AS' ? words[2] : undefined, body: [] })
    } else {
      stages.at(-1)?.body.push(ins)
    }
  }
  return stages
}

interface Copy {
  from: string | undefined
  sources: string[]
  dest: string
}
function parseCopy(args: string): Copy {
  const words = args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/)
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length)
  const paths = words.filter((w) => !w.startsWith('--'))
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1) ?? '' }
}

// .dockerignore as Docker reads it: patterns are relative to the context root (`*.md` matches only at the
// root), `**` spans directories, an excluded directory excludes what is under it, `!` re-includes, and
// the last matching pattern wins.
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!')
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '')
      const source = pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((p) =>
          p === '**/'
            ? '(?:.*/)?'
            : p === '**'
              ? '.*'
              : p === '*'
                ? '[^/]*'
                : p === '?'
                  ? '[^/]'
                  : p.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('')
      return { negate, re: new RegExp(`^${source}$`) }
    })
  return (path) => {
    const parts = path.split('/')
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
    let ignored = false
    for (const { negate, re } of rules) if (prefixes.some((p) => re.test(p))) ignored = !negate
    return ignored
  }
}

const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
const instructions = parseDockerfile(dockerfile)
const stages = stagesOf(instructions)
const final = stages.at(-1) as Stage
const stageByName = (name: string | undefined): Stage | undefined => stages.find((s) => s.name === name)
const runs = (stage: Stage): string[] => stage.body.filter((i) => i.keyword === 'RUN').map((i) => i.args)
const copies = (stage: Stage): Copy[] => stage.body.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args))
const NODE_IMAGE = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)(?:\.\d+){0,2}-([a-z0-9-]+)(?:@sha256:[0-9a-f]{64})?$/

t.test('the Dockerfile parser reads continuations and comments', async (t) => {
  t.same(parseDockerfile('# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\n\nUSER 1\n'), [
    { keyword: 'FROM', args: 'a AS b', line: 2 },
    { keyword: 'RUN', args: 'x && y', line: 3 },
    { keyword: 'USER', args: '1', line: 7 },
  ])
})

t.test('builds in separate stages from the image that runs', async (t) => {
  t.ok(stages.length >= 2, `${stages.length} FROM stages`)
  t.equal(stageByName(final.image), undefined, 'the final stage starts from an image, not from a build stage')
})

t.test('runs on an official Node LTS image with a pinned major version, the same in every stage', async (t) => {
  const m = NODE_IMAGE.exec(final.image)
  t.ok(m, `${final.image} is node:<major>-<variant>`)
  const major = Number(m?.[1])
  t.equal(major % 2, 0, 'even-numbered lines are the LTS lines')
  t.ok(major >= 22, 'Node 20 and older have reached end of life')
  t.match(m?.[2], /slim$/, 'a slim variant: no compilers or VCS tools in the running image')
  for (const s of stages)
    t.equal(NODE_IMAGE.exec(s.image)?.[1], String(major), `stage ${s.name ?? '(final)'} uses Node ${major}`)
})

t.test('the build stage installs with npm ci and compiles with tsc; the image copies only its dist/src', async (t) => {
  const dist = copies(final).filter((c) => c.sources.some((s) => s.includes('dist')))
  t.same(
    dist.map((c) => [c.sources, c.dest]),
    [[['/app/dist/src'], './dist']],
    'dist/src becomes dist, so the entrypoint is dist/cli.js',
  )
  const build = stageByName(dist[0]?.from)
  t.ok(build, `copied from stage ${String(dist[0]?.from)}`)
  t.ok(
    runs(build as Stage).some((r) => /^npm ci\b/.test(r) && !r.includes('--omit=dev')),
    'npm ci with dev dependencies',
  )
  t.ok(
    runs(build as Stage).some((r) => /\btsc -p tsconfig\.json\b/.test(r)),
    'tsc -p tsconfig.json',
  )
  for (const s of stages)
    for (const c of copies(s))
      if (c.from === undefined)
        t.notOk(
          c.sources.some((p) => p === '.' || p === './'),
          'never the whole context',
        )
})

t.test('the image gets production dependencies only', async (t) => {
  t.notOk(
    runs(final).some((r) => /\bnpm (ci|install|i)\b/.test(r) && !r.includes('--omit=dev')),
    'no dev install in the final stage',
  )
  const modules = copies(final).filter((c) => c.sources.some((s) => s.includes('node_modules')))
  t.equal(modules.length, 1, 'node_modules comes from one stage')
  const deps = stageByName(modules[0]?.from)
  t.ok(deps, `stage ${String(modules[0]?.from)}`)
  t.ok(
    runs(deps as Stage).some((r) => /^npm ci\b.*--omit=dev/.test(r)),
    'which runs npm ci --omit=dev',
  )

  // --ignore-scripts is safe only while no production package needs an install script.
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>
  }
  const scripted = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && p.dev !== true && p.hasInstallScript === true)
    .map(([path]) => path)
  t.same(scripted, [], 'no production dependency has an install script')
})

t.test('runs as a numeric non-root user', async (t) => {
  const user = final.body.filter((i) => i.keyword === 'USER').at(-1)?.args ?? ''
  const m = /^(\d+)(?::(\d+))?$/.exec(user)
  t.ok(m, `USER ${user} is numeric, so runAsNonRoot can check it`)
  t.not(Number(m?.[1]), 0, 'uid is not root')
  if (m?.[2] !== undefined) t.not(Number(m[2]), 0, 'gid is not root')
})

t.test('starts `node dist/cli.js serve` in exec form, in production mode, on the default port', async (t) => {
  const entrypoints = final.body.filter((i) => i.keyword === 'ENTRYPOINT')
  t.equal(entrypoints.length, 1)
  t.same(JSON.parse(entrypoints[0]?.args ?? 'null'), ENTRYPOINT, 'a JSON array: no shell between the kubelet and node')
  t.notOk(
    final.body.some((i) => i.keyword === 'CMD' && !i.args.startsWith('[')),
    'no shell-form CMD',
  )
  t.ok(
    final.body.some((i) => i.keyword === 'ENV' && /\bNODE_ENV=production\b/.test(i.args)),
    'NODE_ENV=production',
  )
  t.same(
    final.body.filter((i) => i.keyword === 'EXPOSE').map((i) => i.args),
    [String(parseServeConfig([], {}).port)],
    'EXPOSE is the --port default',
  )
})

t.test('fetches nothing with shell tricks', async (t) => {
  for (const ins of instructions) {
    t.notOk(['ADD', 'SHELL', 'ONBUILD'].includes(ins.keyword), `line ${ins.line}: ${ins.keyword}`)
    t.notMatch(
      ins.args,
      /\b(curl|wget|sudo)\b|\|\s*(ba|z)?sh\b|chmod\s+(-R\s+)?777/,
      `line ${ins.line}: ${ins.keyword} ${ins.args}`,
    )
  }
})

t.test('.dockerignore keeps the host state out and the build inputs in', async (t) => {
  const ignored = dockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'))
  for (const p of [
    'node_modules',
    'node_modules/fastify/package.json',
    '.git',
    '.git/HEAD',
    'dist/src/cli.js',
    'test/config.test.ts',
    '.tap/x',
    'README.md',
    'pullguard-certs/ca.key',
    'certs/make-certs.sh',
    'deep/dir/tls.key',
  ]) {
    t.ok(ignored(p), `${p} is left out`)
  }
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/cli.ts', 'src/server/app.ts'])
    t.notOk(ignored(p), `${p} is sent`)
  t.test('the matcher follows Docker rules', async (t) => {
    const m = dockerignore('*.md\n!KEEP.md\n**/*.key\nbuild/\n')
    t.same(['a.md', 'KEEP.md', 'docs/a.md', 'x.key', 'a/b/x.key', 'build/out/x', 'src/build'].map(m), [
      true,
      false,
      false,
      true,
      true,
      true,
      false,
    ])
  })
})

// Replays the Dockerfile: each stage is a directory, COPY follows Docker's rules (a directory source copies
// its contents; several sources or a trailing slash make the destination a directory), `npm ci` links this
// checkout's node_modules, and tsc runs for real. Other RUN lines are not replayed.
t.test('the image layout starts: `node dist/cli.js serve --help` exits 0', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'pullguard-image-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const ignored = dockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'))
  const roots = new Map<string, string>()
  let workdir = '/'
  let root = ''
  const inStage = (p: string): string => join(root, p.startsWith('/') ? p : join(workdir, p))

  for (const [i, stage] of stages.entries()) {
    root = join(tmp, `stage-${i}`)
    workdir = '/'
    await mkdir(root)
    if (stage.name !== undefined) roots.set(stage.name, root)
    for (const ins of stage.body) {
      if (ins.keyword === 'WORKDIR') {
        workdir = ins.args.startsWith('/') ? ins.args : join(workdir, ins.args)
        await mkdir(inStage('.'), { recursive: true })
      } else if (ins.keyword === 'COPY') {
        const c = parseCopy(ins.args)
        const srcRoot = c.from === undefined ? ROOT : roots.get(c.from)
        if (srcRoot === undefined) throw new Error(`line ${ins.line}: unknown stage ${c.from}`)
        const intoDir = c.dest.endsWith('/') || c.sources.length > 1
        for (const s of c.sources) {
          if (c.from === undefined)
            t.notOk(ignored(s.replace(/^\.?\/+|\/+$/g, '')), `line ${ins.line}: ${s} is in the build context`)
          const from = join(srcRoot, s)
          const info = await lstat(from)
          const isDir = info.isDirectory() || (info.isSymbolicLink() && (await stat(from)).isDirectory())
          const to = isDir || !intoDir ? inStage(c.dest) : join(inStage(c.dest), basename(s))
          await mkdir(isDir ? dirname(to.replace(/\/+$/, '')) : dirname(to), { recursive: true })
          if (info.isSymbolicLink()) await symlink(await readlink(from), to.replace(/\/+$/, ''))
          else
            await cp(from, to, {
              recursive: true,
              filter: (p) => c.from !== undefined || !ignored(relative(ROOT, p)) || p === from,
            })
        }
      } else if (ins.keyword === 'RUN') {
        if (/^npm ci\b/.test(ins.args)) await symlink(join(ROOT, 'node_modules'), inStage('node_modules'))
        const tsc = /\btsc\b(.*)$/.exec(ins.args)
        if (tsc) {
          const r = spawnSync(
            process.execPath,
            [join(ROOT, 'node_modules/typescript/bin/tsc'), ...(tsc[1] ?? '').trim().split(/\s+/)],
            { cwd: inStage('.'), encoding: 'utf8', timeout: 100_000 },
          )
          t.equal(
            r.status,
            0,
            `line ${ins.line}: ${ins.args} compiles with only the copied files\n${r.stdout}${r.stderr}`,
          )
        }
      }
    }
  }

  const app = inStage('.')
  const [cmd, ...args] = JSON.parse(final.body.find((i) => i.keyword === 'ENTRYPOINT')?.args ?? '[]') as string[]
  t.equal(cmd, 'node')
  const r = spawnSync(process.execPath, [...args, '--help'], {
    cwd: app,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_ENV: 'production' },
  })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^pullguard serve: run the validating admission webhook\n/)
  const v = spawnSync(process.execPath, [args.find((a) => a.endsWith('cli.js'))!, '--version'], {
    cwd: app,
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.match(v.stdout, /^pullguard \d+\.\d+\.\d+\n$/, "the version, from the image's package.json")
  t.same(
    (await readdir(app)).sort(),
    ['dist', 'node_modules', 'package.json'],
    'the image holds the app, its dependencies and package.json only',
  )

  // npm ci --omit=dev installs `dependencies` only: everything the compiled code imports must be there.
  const pkg = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  const files = (await readdir(join(app, 'dist'), { recursive: true })).filter((f) => f.endsWith('.js'))
  t.ok(files.includes('cli.js'))
  const missing = new Set<string>()
  for (const f of files) {
    const js = await readFile(join(app, 'dist', f), 'utf8')
    // `from` as a keyword (after a space or `}`), not the end of a string such as 'pinned-from'.
    for (const m of js.matchAll(/(?:[\s}]from\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) {
      const spec = m[1] ?? ''
      if (spec.startsWith('.') || isBuiltin(spec)) continue
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec)
      if (!(name in pkg.dependencies)) missing.add(`${name} (dist/${f})`)
    }
  }
  t.same([...missing], [], 'the compiled code imports only production dependencies')
})
