// The test command: `npm test` runs every tier of tiers.ts in order, `npm test -- <tier> ...` (or
// `npm run test:<tier>`) only those named.
// 1. What the chosen tiers need starts at once, in the background: apt installs of their Debian
//    packages, and their Go builds one after another. Without Go, or with packages missing where
//    they cannot be installed, the command stops before any test and says what to install.
// 2. Each tier is one tap run over its files (tap's own settings in package.json), once what it
//    needs is there: the unit tier at once, the e2e tier after the Go builds, with its shared
//    control planes up.
// 3. Each tap run ends with its summary line (`# { total: N, pass: N, fail: N }`); the command
//    then prints one line per tier and the total, and fails if a tier failed or ended without a
//    summary. .ci/run adds up the tiers' summary lines.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkGo, ClusterBinaryError, ensureToolsets, unbuiltToolsets, type ToolsetName } from '../cluster/binaries.js'
import { startControlPlanePool, type ControlPlanePool } from '../cluster/shared-control-plane.js'
import { canInstall, hints, installPackages, missingPackages, type PackageName } from '../helpers/ensure-packages.js'
import { tierOf, TIERS, type Tier } from './tiers.js'

/** From dist/test/tiers/ (where this runs) up to the repository. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const TAP = join(ROOT, 'node_modules', '.bin', 'tap')
/** What apt printed, kept for the message if an install fails. */
const APT_OUTPUT_CHARS = 4000

interface Counts {
  total: number
  pass: number
  fail: number
  skip: number
}
interface Outcome {
  tier: Tier
  seconds: number
  counts?: Counts
  error?: string
  exitCode?: number | null
}

const say = (line: string): void => {
  process.stdout.write(`# ${line}\n`)
}

/** Every *.test.ts under test/ (fixtures aside), as paths under test/. */
function testFiles(dir = join(ROOT, 'test')): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (entry.name !== 'fixtures' && entry.name !== 'node_modules') found.push(...testFiles(path))
    } else if (entry.name.endsWith('.test.ts')) found.push(relative(join(ROOT, 'test'), path))
  }
  return found.sort()
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)]
}

/** tap's summary line: `# { total: 48, pass: 47, fail: 1 }` (a zero count is left out). */
function parseSummary(line: string): Counts | undefined {
  if (!/^# \{ total: \d+/.test(line)) return undefined
  const count = (name: string): number => Number(new RegExp(`[{ ]${name}: (\\d+)`).exec(line)?.[1] ?? 0)
  return { total: count('total'), pass: count('pass'), fail: count('fail'), skip: count('skip') }
}

let running: ChildProcess | undefined

/** One tap run over `files`; its summary when its output is ours to read (not a terminal). */
function tap(
  files: readonly string[],
  env: NodeJS.ProcessEnv,
  jobs: number | undefined,
): Promise<{ exitCode: number | null; counts?: Counts }> {
  return new Promise((resolve, reject) => {
    // On a terminal tap draws its own report; piped (CI), it writes TAP, summary line last.
    const terminal = process.stdout.isTTY === true
    const child = spawn(TAP, [...(jobs === undefined ? [] : [`--jobs=${jobs}`]), ...files], {
      cwd: ROOT,
      env,
      stdio: ['inherit', terminal ? 'inherit' : 'pipe', 'inherit'],
    })
    running = child
    let counts: Counts | undefined
    let partial = ''
    // Whole lines only, so the Go builds' and apt's progress lines never split one of tap's.
    child.stdout?.on('data', (c: Buffer) => {
      const lines = (partial + c.toString('utf8')).split('\n')
      partial = lines.pop() ?? ''
      if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`)
      for (const line of lines) counts = parseSummary(line) ?? counts
    })
    child.on('error', reject)
    child.on('close', (exitCode) => {
      running = undefined
      if (partial !== '') process.stdout.write(`${partial}\n`)
      counts = parseSummary(partial) ?? counts
      resolve(counts === undefined ? { exitCode } : { exitCode, counts })
    })
  })
}

function tapJobs(): number {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { tap?: { jobs?: number } }
  return pkg.tap?.jobs ?? availableParallelism()
}

function minutes(seconds: number): string {
  return seconds < 120 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}

async function main(args: readonly string[]): Promise<number> {
  const unknown = args.filter((a) => !TIERS.some((t) => t.name === a))
  if (unknown.length > 0) {
    console.error(`unknown tier(s): ${unknown.join(', ')}; the tiers are ${TIERS.map((t) => t.name).join(', ')}`)
    return 2
  }
  const tiers = TIERS.filter((t) => args.length === 0 || args.includes(t.name))
  const files = new Map<Tier, string[]>(tiers.map((t) => [t, []]))
  for (const file of testFiles()) files.get(tierOf(file))?.push(join('dist', 'test', file.replace(/\.ts$/, '.js')))
  const unbuilt = [...files.values()].flat().filter((f) => !existsSync(join(ROOT, f)))
  if (unbuilt.length > 0) {
    console.error(`not compiled: ${unbuilt.join(', ')}; run npm run build first`)
    return 2
  }
  const started = Date.now()
  say(`tiers: ${tiers.map((t) => t.name).join(' ')}`)

  const needRoot = tiers.filter((t) => t.root === true)
  if (needRoot.length > 0 && process.getuid?.() !== 0) {
    console.error(
      `the ${needRoot.map((t) => t.name).join(', ')} tier runs a kubelet and containerd, which change mounts, cgroups and sysctls: ` +
        `run the test command as root (CI does), or name the other tiers: npm test -- ${TIERS.filter(
          (t) => t.root !== true,
        )
          .map((t) => t.name)
          .join(' ')}`,
    )
    return 1
  }

  // 1. What the tiers need, all started now.
  const packages = unique(tiers.flatMap((t) => t.packages))
  const missing = missingPackages(packages)
  if (missing.length > 0 && !canInstall()) {
    for (const line of hints(missing)) console.error(line)
    return 1
  }
  const toolsets = unique(tiers.flatMap((t) => t.toolsets))
  if (unbuiltToolsets(toolsets).length > 0) {
    try {
      checkGo()
    } catch (err) {
      console.error(err instanceof ClusterBinaryError ? err.message : String(err))
      return 1
    }
  }
  let aptOutput = ''
  const stillMissing: Promise<PackageName[]> =
    missing.length === 0
      ? Promise.resolve([])
      : (() => {
          say(`installing with apt, in the background: ${missing.join(' ')}`)
          const t0 = Date.now()
          return installPackages(missing, (text) => (aptOutput = (aptOutput + text).slice(-APT_OUTPUT_CHARS))).then(
            (left) => {
              say(
                left.length === 0
                  ? `installed ${missing.join(' ')} in ${Math.round((Date.now() - t0) / 1000)} s`
                  : `apt could not install ${left.join(' ')}`,
              )
              return left
            },
          )
        })()
  // Each build's error, or undefined once built; one after the other in the tiers' order.
  const built = new Map<ToolsetName, Promise<Error | undefined>>(
    toolsets.map((name) => [
      name,
      ensureToolsets([name], (line) => say(line)).then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      ),
    ]),
  )

  const ready = async (tier: Tier): Promise<string | undefined> => {
    if (tier.packages.some((p) => missing.includes(p))) {
      const left = (await stillMissing).filter((p) => tier.packages.includes(p))
      if (left.length > 0) return `${hints(left).join('\n')}\napt's output:\n${aptOutput}`
    }
    for (const name of tier.toolsets) {
      const err = await built.get(name)
      if (err !== undefined) return err.message
    }
    return undefined
  }

  // 2. The tiers, in order.
  const outcomes: Outcome[] = []
  for (const tier of tiers) {
    const list = files.get(tier) ?? []
    const waitFrom = Date.now()
    const notReady = await ready(tier)
    const waited = Math.round((Date.now() - waitFrom) / 1000)
    const tierStart = Date.now()
    const seconds = (): number => Math.round((Date.now() - tierStart) / 1000)
    if (notReady !== undefined) {
      outcomes.push({ tier, seconds: 0, error: notReady })
      console.error(`tier ${tier.name} not run: ${notReady}`)
      continue
    }
    if (list.length === 0) {
      outcomes.push({ tier, seconds: 0, error: 'no test files' })
      continue
    }
    say(
      `tier ${tier.name}: ${list.length} files${waited > 0 ? `, after ${minutes(waited)} waiting for what it needs` : ''}`,
    )
    let pool: ControlPlanePool | undefined
    try {
      if (tier.sharedControlPlanes) pool = await startControlPlanePool(tapJobs())
      const run = await tap(list, { ...process.env, ...pool?.env }, tier.jobs)
      outcomes.push({
        tier,
        seconds: seconds(),
        exitCode: run.exitCode,
        ...(run.counts === undefined ? {} : { counts: run.counts }),
      })
    } catch (err) {
      outcomes.push({ tier, seconds: seconds(), error: (err as Error).stack ?? String(err) })
    } finally {
      await pool?.close()
    }
  }

  // 3. One line per tier, then the total.
  const total: Counts = { total: 0, pass: 0, fail: 0, skip: 0 }
  let ok = true
  for (const o of outcomes) {
    for (const k of ['total', 'pass', 'fail', 'skip'] as const) total[k] += o.counts?.[k] ?? 0
    // Piped, tap's summary is read: a run without one failed, whatever its exit status.
    const summarized = o.counts !== undefined || process.stdout.isTTY === true
    const passed = o.error === undefined && o.exitCode === 0 && summarized && (o.counts?.fail ?? 0) === 0
    ok &&= passed
    const counts =
      o.counts === undefined
        ? ''
        : `${o.counts.pass} passed, ${o.counts.fail} failed${o.counts.skip > 0 ? `, ${o.counts.skip} skipped` : ''}, `
    const why =
      o.error !== undefined
        ? `not run: ${o.error.split('\n')[0]}`
        : passed
          ? 'ok'
          : summarized
            ? `failed (tap exited with ${o.exitCode})`
            : `failed: no summary from tap (it exited with ${o.exitCode})`
    say(`tier ${o.tier.name}: ${counts}${why} (${minutes(o.seconds)})`)
  }
  say(
    `all tiers: ${total.pass} passed, ${total.fail} failed${total.skip > 0 ? `, ${total.skip} skipped` : ''} in ${minutes(Math.round((Date.now() - started) / 1000))}`,
  )
  return ok ? 0 : 1
}

// Ctrl-C or a CI timeout: tap stops its test files (which stop their own processes); exiting
// stops the control planes and Go builds this process started (their exit hooks).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    running?.kill(signal)
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}
// exit, not exitCode: a Go build no tier waits for any more (one failed before it) ends here too.
process.exit(await main(process.argv.slice(2)))
