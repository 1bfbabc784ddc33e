// 100 000 generated bodies over real HTTPS to `pullguard serve`: truncated JSON, deep nesting,
// huge strings, wrong types in every field, duplicate keys, bytes that are not UTF-8, scalars,
// reviews with hostile image strings, oversized and compressed bodies, wrong content types and
// slow uploads. Every one is answered 200 or 4xx (never 5xx, never a dropped connection), no
// error is logged, memory stays bounded, and a good review right after is still judged.
import { gzipSync } from 'node:zlib'
import { connect, createSecureContext } from 'node:tls'
import t from 'tap'
import { Pool, request } from 'undici'
import { jsonPaths } from '../helpers/json-paths.js'
import { loadFixture, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { closedPort, startFakeServer } from '../helpers/fake-server.js'
import { gc } from '../helpers/gc.js'
import { createTestCA } from '../helpers/pki.js'
import { startWebhook } from '../helpers/webhook.js'

const BODIES = Number(process.env.PULLGUARD_FUZZ_BODIES ?? 100_000)
const SEED = Number(process.env.PULLGUARD_FUZZ_SEED ?? 20261125)
const IN_FLIGHT = 32

// 100 000 HTTPS requests take one to three minutes on a 2-core CI machine: more than tap's default.
t.setTimeout(420_000)

const ca = await createTestCA()
t.teardown(() => ca.close())
const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
// Images that parse point at a registry stand-in where every manifest exists (answers are cached,
// so the many valid reviews cost little), or at a closed port (refused at once, never cached).
const registry = await startFakeServer((req, res) => {
  if (req.url === '/v2/') return res.writeHead(200).end()
  res
    .writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'docker-content-digest': `sha256:${'ab'.repeat(32)}`,
      'content-length': '2',
    })
    .end(req.method === 'HEAD' ? undefined : '{}')
}, ca)
t.teardown(() => registry.close())
const live = registry.host
const dead = `127.0.0.1:${await closedPort()}`
const hook = await startWebhook({ ca, kube, args: ['--timeout', '2s', '--log-level', 'info'] })
t.teardown(() => hook.close())
// A Pool, not an Agent: an Agent drops its pool for an origin whose connections all closed and
// starts over without TLS sessions. One secure context for every connection.
const agent = new Pool(hook.origin, {
  connect: { secureContext: createSecureContext({ ca: ca.caPem }) },
  connections: IN_FLIGHT,
})
t.teardown(() => agent.close())

/** mulberry32: a small seeded generator, so a failing body can be produced again from the seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
const random = rng(SEED)
const int = (n: number): number => Math.floor(random() * n)
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!

const base = loadFixture<any>('admission/pod-create.json')
base.request.object.spec.initContainers = []
base.request.object.spec.containers = [{ name: 'app', image: `${live}/team/app:1` }]
base.request.object.spec.imagePullSecrets = []
const baseText = JSON.stringify(base)

const allPaths = jsonPaths(base).filter((p) => p.length > 0)

const oddValues: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1e308,
  '',
  'x',
  [],
  {},
  [[]],
  { a: { b: {} } },
  '\u0000',
  '\ud800',
  'A'.repeat(5000),
  [1, 'two', null],
  { __proto__: { polluted: true } },
  { constructor: { prototype: {} } },
]
const hostileImages = [
  '',
  ' ',
  'UPPER/Case:1',
  'a'.repeat(5000),
  '\u0000',
  'x@sha256:zz',
  'http://evil/x',
  `${dead}/unreachable:1`,
  '169.254.169.254/x:1',
  'localhost:99999999/x',
  '[::1/x',
  '@',
  ':',
  '/',
  'a//b',
  'ü/x:1',
  '../../etc/passwd',
]

function setAt(doc: any, path: Array<string | number>, value: unknown): void {
  let parent = doc
  for (const k of path.slice(0, -1)) parent = parent[k]
  const last = path.at(-1)!
  if (value === undefined) delete parent[last]
  else parent[last] = value
}

type Body = { name: string; body: string | Buffer; headers?: Record<string, string> }

/** One generated body; the kinds are weighted so the cheap, varied ones dominate. */
function generate(i: number): Body {
  const kind = int(100)
  if (kind < 15) {
    const cut = int(baseText.length)
    return { name: 'truncated', body: baseText.slice(0, cut) }
  }
  if (kind < 20) {
    const depth = 1 + int(i % 2000 === 0 ? 100_000 : 2000)
    const open = pick(['[', '{"a":', '{"request":'])
    const close = open === '[' ? ']' : '}'
    return { name: 'deep', body: open.repeat(depth) + (int(2) === 0 ? '1' + close.repeat(depth) : '') }
  }
  if (kind < 22) {
    const doc = structuredClone(base)
    const size = i % 100 === 0 ? 1_000_000 : 20_000
    setAt(
      doc,
      pick([
        ['request', 'uid'],
        ['request', 'name'],
        ['request', 'object', 'spec', 'containers', 0, 'image'],
        ['request', 'object', 'metadata', 'name'],
      ]),
      'z'.repeat(size),
    )
    return { name: 'huge string', body: JSON.stringify(doc) }
  }
  if (kind < 55) {
    const doc = structuredClone(base)
    setAt(doc, pick(allPaths), int(8) === 0 ? undefined : pick(oddValues))
    return { name: 'wrong type', body: JSON.stringify(doc) }
  }
  if (kind < 60) {
    const dup = pick(['"request":{"uid":"dup"}', '"apiVersion":"v0"', '"kind":"Other"', '"request":null'])
    return { name: 'duplicate key', body: `{${dup},${baseText.slice(1)}`.replace(/}$/, `,${dup}}`) }
  }
  if (kind < 67) {
    const bytes = Buffer.alloc(1 + int(400))
    for (let j = 0; j < bytes.length; j++) bytes[j] = int(256)
    if (int(2) === 0) bytes.write('{"apiVersion":"', 0)
    return { name: 'not UTF-8', body: bytes }
  }
  if (kind < 72) {
    return {
      name: 'scalar',
      body: pick([
        '',
        'null',
        'true',
        '0',
        '"x"',
        '[]',
        '{}',
        '[{}]',
        '{"apiVersion":"admission.k8s.io/v1"}',
        '1e999999',
        '-',
        '{"a":1,}',
        '\ufeff{}',
      ]),
    }
  }
  if (kind < 90) {
    const doc = structuredClone(base)
    doc.request.uid = `fuzz-${i}`
    doc.request.object.spec.containers = Array.from({ length: 1 + int(4) }, (_, c) => ({
      name: `c${c}`,
      image: int(3) === 0 ? `${live}/team/app-${int(50)}:1` : pick(hostileImages),
    }))
    if (int(4) === 0)
      doc.request.object.spec.imagePullSecrets = [{ name: pick(['', '..', 'a/b', 'x'.repeat(300), 'ok']) }]
    return { name: 'hostile images', body: JSON.stringify(doc) }
  }
  // Bytes mutated in a valid body: flipped, dropped or duplicated characters.
  const chars = baseText.split('')
  for (let n = 0; n < 1 + int(5); n++) {
    const at = int(chars.length)
    const op = int(3)
    if (op === 0) chars[at] = String.fromCharCode(int(128))
    else if (op === 1) chars.splice(at, 1)
    else chars.splice(at, 0, chars[at]!)
  }
  return { name: 'mutated bytes', body: chars.join('') }
}

const ACCEPTED = new Set([200, 400, 413, 415])

t.test(`${BODIES} generated bodies: 200 or 4xx, never 5xx; memory bounded; a good review still works`, async (t) => {
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const statuses = new Map<number, number>()
  const unexpected: string[] = []
  let next = 0
  let errorLines = 0
  const worker = async (): Promise<void> => {
    while (next < BODIES) {
      const i = next++
      const b = generate(i)
      try {
        const res = await request(`${hook.origin}/validate`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', ...b.headers },
          body: b.body,
        })
        const text = await res.body.text()
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        if (!ACCEPTED.has(res.statusCode) && unexpected.length < 10)
          unexpected.push(`#${i} ${b.name}: HTTP ${res.statusCode} ${text.slice(0, 200)}`)
        if (res.statusCode === 400 && !/"reason":"[^"]/.test(text) && unexpected.length < 10)
          unexpected.push(`#${i} ${b.name}: 400 without a reason: ${text.slice(0, 200)}`)
      } catch (err) {
        if (unexpected.length < 10) unexpected.push(`#${i} ${b.name}: ${(err as Error).message}`)
      }
      // The captured log lines would be most of the memory: check them as they come, then drop them.
      if (hook.logs.length > 1000) {
        errorLines += hook.logs.filter((l) => /"level":(50|60)/.test(l)).length
        hook.logs.length = 0
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  errorLines += hook.logs.filter((l) => /"level":(50|60)/.test(l)).length
  hook.logs.length = 0

  t.same(unexpected, [], 'every body got 200 or 4xx with a reason')
  t.equal(
    [...statuses.values()].reduce((a, b) => a + b, 0),
    BODIES,
    'every body was answered',
  )
  t.ok(
    (statuses.get(200) ?? 0) > BODIES / 10 && (statuses.get(400) ?? 0) > BODIES / 10,
    `both judged and refused bodies: ${JSON.stringify(Object.fromEntries(statuses))}`,
  )
  t.equal(errorLines, 0, 'no error logged (a 500 path would log "request failed")')
  gc()
  const grown = process.memoryUsage().heapUsed - heapBefore
  t.ok(grown < 64 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MB`)

  const good = structuredClone(base)
  good.request.object.spec.containers = [{ name: 'app', image: `${live}/team/after-the-fuzz:1` }]
  const res = await hook.post(good)
  t.equal(res.status, 200)
  t.same(
    res.body.response,
    { uid: base.request.uid, allowed: true },
    'a good review right after is judged, against its registry',
  )
  const unreachable = structuredClone(base)
  unreachable.request.object.spec.containers = [{ name: 'app', image: `${dead}/team/app:1` }]
  t.match(
    (await hook.post(unreachable)).body.response,
    { allowed: true, warnings: [/unreachable/] },
    'and an unreachable registry is still reported as such',
  )
})

t.test('bodies a client could use to tie the server up', async (t) => {
  const post = async (
    body: string | Buffer,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string }> => {
    const res = await request(`${hook.origin}/validate`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...headers },
      body,
    })
    return { status: res.statusCode, text: await res.body.text() }
  }
  const over = await post(Buffer.alloc(9 * 1024 * 1024, 0x20))
  t.equal(over.status, 413, 'more than the 8 MiB limit')
  t.match(over.text, /"reason":/)
  // A gzip bomb: 50 MB of zeros in ~50 KB. The body is not inflated (no content-encoding is
  // honored), so it is refused for what it is.
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024))
  const gz = await post(bomb, { 'content-encoding': 'gzip' })
  t.ok(gz.status === 400 || gz.status === 415, `gzip body: ${gz.status} ${gz.text.slice(0, 120)}`)
  const plain = await post('{}', { 'content-type': 'text/plain' })
  t.ok(plain.status === 400 || plain.status === 415, `text/plain: ${plain.status}`)
  t.equal(
    (await post('{}', { 'content-type': 'application/x-www-form-urlencoded' })).status,
    415,
    'a type with no parser',
  )
  t.equal(
    (await post(baseText, { 'content-type': 'application/json; charset=utf-16' })).status < 500,
    true,
    'odd charset',
  )

  // A slow upload: the review arrives over three seconds, a few bytes at a time, and is answered.
  const { port } = new URL(hook.origin)
  const slow = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca: ca.caPem, servername: 'localhost' }, () => {
      const body = Buffer.from(JSON.stringify({ ...base, request: { ...base.request, uid: 'slow-upload' } }))
      socket.write(
        `POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      )
      let sent = 0
      const step = Math.ceil(body.length / 30)
      const timer = setInterval(() => {
        socket.write(body.subarray(sent, sent + step))
        sent += step
        if (sent >= body.length) clearInterval(timer)
      }, 100)
    })
    let answer = ''
    socket.on('data', (d: Buffer) => (answer += d.toString()))
    socket.on('end', () => resolve(answer))
    socket.on('error', reject)
  })
  t.match(slow, /^HTTP\/1\.1 200/)
  t.match(slow, /"uid":"slow-upload"/)
})
