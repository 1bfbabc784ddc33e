// The stdout logger batches its lines (src/log/logger.ts): a lone line still appears within the
// flush interval, and an exit writes whatever is left.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const LOGGER = fileURLToPath(new URL('../../src/log/logger.js', import.meta.url))

function child(script: string): {
  lines: () => string[]
  exited: Promise<number | null>
  firstLineAfterMs: Promise<number>
} {
  const started = Date.now()
  const proc = spawn(
    process.execPath,
    ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(LOGGER)}\n${script}`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  let resolveFirst: (ms: number) => void = () => {}
  const firstLineAfterMs = new Promise<number>((r) => (resolveFirst = r))
  proc.stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8')
    if (out.includes('\n')) resolveFirst(Date.now() - started)
  })
  return {
    lines: () => out.split('\n').filter((l) => l !== ''),
    exited: new Promise((r) => proc.once('exit', r)),
    firstLineAfterMs,
  }
}

t.test('a lone line is written within the flush interval, while the process keeps running', async (t) => {
  const c = child(
    `const log = createLogger('info'); setTimeout(() => log.info({ n: 1 }, 'lone'), 300); setTimeout(() => process.exit(0), 3000)`,
  )
  const ms = await c.firstLineAfterMs
  t.ok(ms < 1500, `first line after ${ms} ms (logged at 300 ms, flushed within 200 ms, plus start-up)`)
  t.match(JSON.parse(c.lines()[0] ?? '{}'), { msg: 'lone', n: 1, app: 'pullguard' })
  await c.exited
})

t.test('process.exit right after logging still writes every line', async (t) => {
  const c = child(
    `const log = createLogger('info'); for (let i = 0; i < 500; i++) log.info({ i }, 'decision'); process.exit(0)`,
  )
  t.equal(await c.exited, 0)
  const lines = c.lines()
  t.equal(lines.length, 500)
  t.same(
    lines.map((l) => JSON.parse(l).i),
    Array.from({ length: 500 }, (_, i) => i),
    'in order, none lost',
  )
})

t.test('credentials are redacted in stdout lines too', async (t) => {
  const c = child(
    `const log = createLogger('info'); log.info({ auth: { password: 'hunter2-secret' } }, 'x'); process.exit(0)`,
  )
  await c.exited
  t.notMatch(c.lines().join('\n'), 'hunter2-secret')
})
