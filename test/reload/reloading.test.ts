// A configuration kept in memory and read again when its files change: the first read failing is
// the caller's error, a later failure keeps the last good version (logged), and each new version
// moves the generation.
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log/logger.js'
import { Reloading } from '../../src/reload/reloading.js'

function logs(): { lines: any[]; logger: ReturnType<typeof createLogger> } {
  const lines: any[] = []
  const logger = createLogger(
    'info',
    new Writable({
      write: (chunk, _e, done) => {
        lines.push(JSON.parse(chunk.toString()))
        done()
      },
    }),
  )
  return { lines, logger }
}

t.test('read, reload, keep the last good version, move the generation', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-reloading-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'conf')
  await writeFile(file, '1')
  const { lines, logger } = logs()
  const seen: number[] = []
  const r = new Reloading({
    read: () => {
      const n = Number(readFileSync(file, 'utf8'))
      if (Number.isNaN(n)) throw new Error('not a number')
      return n
    },
    files: () => [file],
    logger,
    what: 'test configuration',
    summary: (n) => ({ value: n }),
    onRead: (n) => seen.push(n),
    pollMs: 20,
  })
  t.teardown(() => r.close())
  t.equal(r.current, 1)
  t.equal(r.generation, 1)
  t.match(lines, [{ msg: 'test configuration read', value: 1 }])
  await writeFile(file, '2')
  const until = async (done: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000
    while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await until(() => r.current === 2)
  t.equal(r.current, 2, 'a change is read again')
  t.equal(r.generation, 2)
  await writeFile(file, 'x')
  await until(() => lines.some((l) => l.msg.includes('could not be read again')))
  t.equal(r.current, 2, 'a bad version keeps the last good one')
  t.equal(r.generation, 2)
  t.match(lines.at(-1), {
    msg: 'test configuration could not be read again; keeping the previous version',
    problem: 'not a number',
  })
  t.same(seen, [1, 2])
})

t.test('the first read failing is thrown, and nothing is left watching', async (t) => {
  const { logger } = logs()
  t.throws(
    () =>
      new Reloading({
        read: () => {
          throw new Error('broken')
        },
        files: () => [],
        logger,
        what: 'x',
        summary: () => ({}),
      }),
    /broken/,
  )
  const unwatched = new Reloading({
    read: () => 7,
    files: () => [],
    logger,
    what: 'x',
    summary: () => ({}),
    watch: false,
  })
  unwatched.reload()
  t.equal(unwatched.generation, 2, 'reload() reads again on demand')
})
