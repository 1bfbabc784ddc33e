// `BENCH_PHASES=scale npm run bench`: pullguard in a big cluster, in the real kube-apiserver (etcd on
// a temporary folder). Objects are created through the API with bounded concurrency: 5,000
// namespaces, 25,000 docker pull secrets (a few registries each, one long token among them, as cloud
// keys are), 10,000 service accounts listing pull secrets, 20,000 workloads (Deployments and bare
// Pods), 1,000 Nodes with platform labels. BENCH_SCALE=0.1 runs a tenth of it.
//
// Then, with pullguard run as its own CLI process (as in a cluster) with the audit on:
// - time from start to /readyz and to every watched copy listed (its "cache synced" lines);
// - RSS and heap at ready, after 100,000 cached answers, after an hour's worth of secret churn
//   compressed into a minute;
// - warm review throughput and p99, against the same review with the small (empty) cluster;
// - one background audit pass of serve, and `pullguard diagnose namespace -A` and `pullguard audit -A`:
//   time and peak RSS, and for the audit the container uses, distinct questions and registry requests;
// - the same audit as on EKS (every pod pulling with the nodes' credentials), the workloads replaced;
// - what a watch reconnect costs: kube-apiserver is restarted (every watch breaks), and each copy
//   must resume from its resourceVersion (kept fresh by bookmarks), not list again.
// It asserts nothing; it prints, like the other phases.
import autocannon from 'autocannon'
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import yaml from 'js-yaml'
import { Pool } from 'undici'
import { startControlPlane } from '../cluster/control-plane.js'
import { installPullguard, startPullguard, type PullguardProcess } from '../cluster/pullguard.js'
import { inCgroup, memoryCgroup, type MemoryCgroup } from './cgroup.js'
import type { ChildRequest } from './server-child.js'

const SCALE = Number(process.env['BENCH_SCALE'] ?? 1)
const NAMESPACES = Math.round(5_000 * SCALE)
const SECRETS_PER_NS = 5
const ACCOUNTS_PER_NS = 2 // `default` (the pods' account: no controller makes it here) and `app`
const DEPLOYMENTS_PER_NS = 2
const PODS_PER_NS = 2
const NODES = Math.round(1_000 * SCALE)
const IMAGES = 50
const CACHED_ANSWERS = Number(process.env['BENCH_SCALE_ANSWERS'] ?? 100_000)
const FILL_CONCURRENCY = 48
const CHURN_SECONDS = 60
/** Secret changes a second during churn: an hour of one change a second, in a minute. */
const CHURN_RATE = 60
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url))
/**
 * As the pod runs it: the Deployment's NODE_OPTIONS (in the environment, where node refuses most V8
 * flags) and the image's entrypoint flags, inside a memory cgroup with its memory limit (Node
 * sizes V8's heap from that limit, see cgroup.ts). Plus a GC on SIGUSR2 for the measurements (a
 * bench-only hook, not part of pullguard).
 */
const POD = deploymentContainer()
/** BENCH_NODE_ARGS: V8 flags to try on top of the pod's (measured, then written into the image's entrypoint). */
const TRIED = (process.env['BENCH_NODE_ARGS'] ?? '').split(/\s+/).filter((o) => o !== '')
const NODE_ARGS = [
  ...POD.entrypointFlags,
  ...TRIED,
  '--expose-gc',
  '--import',
  'data:text/javascript,process.on("SIGUSR2",()=>globalThis.gc())',
]
/** BENCH_HEAP_SNAPSHOT=DIR: a heap snapshot of pullguard at ready and with the cached answers (node --heapsnapshot-signal). */
const SNAPSHOTS = process.env['BENCH_HEAP_SNAPSHOT']
if (SNAPSHOTS !== undefined) NODE_ARGS.push('--heapsnapshot-signal=SIGWINCH', `--diagnostic-dir=${SNAPSHOTS}`)
async function snapshot(pg: PullguardProcess): Promise<void> {
  if (SNAPSHOTS === undefined) return
  process.kill(pg.child.process.pid!, 'SIGWINCH')
  // Writing a snapshot stops the process for a while; /metrics answers again once it is written.
  await new Promise((r) => setTimeout(r, 2_000))
  await pg.metrics()
}

/**
 * The pullguard container of manifests/base/deployment.yaml (its NODE_OPTIONS and memory limit) and
 * the node flags of the Dockerfile's entrypoint (between `node` and the script).
 */
export function deploymentContainer(): { nodeOptions: string; entrypointFlags: string[]; memoryLimitBytes: number } {
  const file = fileURLToPath(new URL('../../../manifests/base/deployment.yaml', import.meta.url))
  const doc = yaml.load(readFileSync(file, 'utf8')) as {
    spec: {
      template: {
        spec: {
          containers: Array<{
            name: string
            env?: Array<{ name: string; value?: string }>
            resources?: { limits?: { memory?: string } }
          }>
        }
      }
    }
  }
  const c = doc.spec.template.spec.containers.find((x) => x.name === 'pullguard')
  const options = c?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value
  const limit = /^(\d+)Mi$/.exec(c?.resources?.limits?.memory ?? '')
  if (c === undefined || options === undefined || limit === null)
    throw new Error(`${file}: no pullguard container with NODE_OPTIONS and a memory limit in Mi`)
  const dockerfile = readFileSync(fileURLToPath(new URL('../../../Dockerfile', import.meta.url)), 'utf8')
  const entrypoint = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1] ?? '[]') as string[]
  const script = entrypoint.findIndex((a) => a.endsWith('.js'))
  if (entrypoint[0] !== 'node' || script < 0)
    throw new Error(`Dockerfile: the ENTRYPOINT is not node with a script: ${JSON.stringify(entrypoint)}`)
  return {
    nodeOptions: options,
    entrypointFlags: entrypoint.slice(1, script),
    memoryLimitBytes: Number(limit[1]) * 1024 * 1024,
  }
}

type Report = (name: string, value: string, target?: string) => void
const mb = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)} MB`
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function rssOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

async function heapOf(pg: PullguardProcess): Promise<{ used: number; total: number; external: number }> {
  const text = await pg.metrics()
  const metric = (name: string): number => Number(new RegExp(`^pullguard_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN)
  return {
    used: metric('nodejs_heap_size_used_bytes'),
    total: metric('nodejs_heap_size_total_bytes'),
    external: metric('nodejs_external_memory_bytes'),
  }
}

/**
 * After a full GC (SIGUSR2, see NODE_ARGS), as the memory phase measures: what is held, not what
 * garbage happens to be waiting. V8 gives pages back to the system over the seconds after a burst
 * (its memory reducer), so RSS is read once it has stopped falling (at least 15 s, at most 45 s): the state, not
 * the burst. What the burst took is `peakSince`.
 */
async function memory(pg: PullguardProcess): Promise<string> {
  const pid = pg.child.process.pid!
  process.kill(pid, 'SIGUSR2')
  await new Promise((r) => setTimeout(r, 1_000))
  const first = rssOf(pid).rss
  let rss = first
  // The reducer starts 8 s after activity ends (--gc-memory-reducer-start-delay-ms): wait past it.
  for (let steady = 0, waited = 0; (waited < SETTLE_MIN_S || steady < 3) && waited < 45; waited++) {
    await new Promise((r) => setTimeout(r, 1_000))
    const now = rssOf(pid).rss
    steady = now < rss - 1024 * 1024 ? 0 : steady + 1
    rss = Math.min(rss, now)
  }
  const heap = await heapOf(pg)
  return `RSS ${mb(rss)}${first - rss > 4 * 1024 * 1024 ? ` (${mb(first)} right after the GC)` : ''}, heap used ${mb(heap.used)} (of ${mb(heap.total)} held by V8; ${mb(heap.external)} outside it)`
}

const SETTLE_MIN_S = 15

/** Starts a peak-RSS window (the kernel's high-water mark, reset through clear_refs). */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5')
}

/** Creates every object through the API, `concurrency` at a time; 409 (exists) counts as done, 429/5xx are retried. */
async function createAll(
  pool: Pool,
  token: string,
  objects: Iterable<{ path: string; body: unknown }>,
  concurrency = FILL_CONCURRENCY,
): Promise<number> {
  const it = objects[Symbol.iterator]()
  let done = 0
  const worker = async (): Promise<void> => {
    for (let next = it.next(); next.done !== true; next = it.next()) {
      const { path, body } = next.value
      for (let attempt = 0; ; attempt++) {
        const res = await pool
          .request({
            method: 'POST',
            path,
            body: JSON.stringify(body),
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          })
          .catch((err: unknown) => ({
            statusCode: 0,
            body: { dump: async () => undefined, text: async () => String(err) },
          }))
        const status = res.statusCode
        if (status === 201 || status === 409) {
          await res.body.dump()
          break
        }
        const text = await res.body.text()
        if ((status === 429 || status >= 500 || status === 0) && attempt < 10) {
          await new Promise((r) => setTimeout(r, 200 * (attempt + 1)))
          continue
        }
        throw new Error(`POST ${path}: HTTP ${status} ${text.slice(0, 300)}`)
      }
      done++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return done
}

const ns = (i: number): string => `scale-${String(i).padStart(4, '0')}`

/** `length` characters that look like key material (base64 of hashes: they do not compress), the same for the same seed. */
function keyMaterial(seed: number, length: number): string {
  let out = ''
  while (out.length < length) out += createHash('sha512').update(`${seed}:${out.length}`).digest('base64')
  return out.slice(0, length)
}

/**
 * A pull secret's `.dockerconfigjson`, base64: two or three registries with robot tokens, and every
 * fifth one also a Google service-account key (`_json_key`, about 2.3 KB) — real secrets range from a
 * few hundred bytes to a few KB.
 */
function dockerConfig(i: number, registry: string): string {
  const auth = (user: string, password: string): { auth: string } => ({
    auth: Buffer.from(`${user}:${password}`).toString('base64'),
  })
  const auths: Record<string, { auth: string }> = {
    [registry]: auth(`robot$team-${i}`, keyMaterial(i, 48)),
    [`registry-${i % 7}.corp.example:5000`]: auth('robot', keyMaterial(i + 1, 40)),
  }
  if (i % 3 === 0) auths['quay.io'] = auth(`org+pull${i}`, keyMaterial(i + 2, 64))
  if (i % 5 === 0) {
    auths['gcr.io'] = auth(
      '_json_key',
      JSON.stringify({
        type: 'service_account',
        project_id: `project-${i % 13}`,
        private_key_id: keyMaterial(i + 3, 40),
        private_key: `-----BEGIN PRIVATE KEY-----\n${keyMaterial(i + 4, 1624)}\n-----END PRIVATE KEY-----\n`,
        client_email: `pull-${i}@project-${i % 13}.iam.gserviceaccount.com`,
        client_id: String(100000000000000000000 + i),
      }),
    )
  }
  return Buffer.from(JSON.stringify({ auths })).toString('base64')
}

/**
 * Which content each namespace's pull secrets have: `pull-0` is the same everywhere and `pull-1` the
 * same for every namespace of a team (tools that copy one secret into many namespaces), the others
 * the namespace's own.
 */
function secretContent(namespaceIndex: number, s: number): number {
  if (s === 0) return 0
  if (s === 1) return 1 + (namespaceIndex % 50)
  return 100 + namespaceIndex * SECRETS_PER_NS + s
}

function* clusterObjects(): Generator<{ path: string; body: unknown }> {
  for (let n = 0; n < NODES; n++) {
    const arch = n % 4 === 0 ? 'arm64' : 'amd64'
    yield {
      path: '/api/v1/nodes',
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: `node-${n}`,
          labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': arch, 'kubernetes.io/hostname': `node-${n}` },
        },
      },
    }
  }
  for (let i = 0; i < NAMESPACES; i++)
    yield {
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns(i), labels: { team: `team-${i % 50}` } } },
    }
}

/** `accounts`: the pull secrets and service accounts; `workloads`: what uses them (made after, since a Pod needs its account). */
function* namespaceObjects(
  registry: string,
  part: 'accounts' | 'workloads',
): Generator<{ path: string; body: unknown }> {
  for (let i = 0; i < NAMESPACES; i++) {
    const n = ns(i)
    if (part === 'accounts') {
      for (let s = 0; s < SECRETS_PER_NS; s++) {
        yield {
          path: `/api/v1/namespaces/${n}/secrets`,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'kubernetes.io/dockerconfigjson',
            metadata: { name: `pull-${s}`, namespace: n },
            data: { '.dockerconfigjson': dockerConfig(secretContent(i, s), registry) },
          },
        }
      }
      yield {
        path: `/api/v1/namespaces/${n}/serviceaccounts`,
        body: {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'default', namespace: n },
          imagePullSecrets: [{ name: 'pull-0' }],
        },
      }
      yield {
        path: `/api/v1/namespaces/${n}/serviceaccounts`,
        body: {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'app', namespace: n },
          imagePullSecrets: [{ name: 'pull-1' }, { name: 'pull-2' }],
        },
      }
      continue
    }
    const image = (k: number): string => `${registry}/team/app-${(i + k) % IMAGES}:1.0`
    const spec = (k: number): Record<string, unknown> => ({
      serviceAccountName: k % 2 === 0 ? 'app' : 'default',
      imagePullSecrets: [{ name: 'pull-3' }],
      containers: [
        { name: 'app', image: image(k) },
        { name: 'sidecar', image: image(k + 1) },
      ],
    })
    for (let d = 0; d < DEPLOYMENTS_PER_NS; d++) {
      yield {
        path: `/apis/apps/v1/namespaces/${n}/deployments`,
        body: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: `web-${d}`, namespace: n },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: `web-${d}` } },
            template: { metadata: { labels: { app: `web-${d}` } }, spec: spec(d) },
          },
        },
      }
    }
    for (let p = 0; p < PODS_PER_NS; p++)
      yield {
        path: `/api/v1/namespaces/${n}/pods`,
        body: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `job-${p}`, namespace: n },
          spec: { ...spec(p + 2), restartPolicy: 'Never' },
        },
      }
  }
}

function startInstantRegistry(certPem: string, keyPem: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(new URL('./server-child.js', import.meta.url)), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port?: number; error?: string }) =>
      m.port !== undefined ? resolve({ child, port: m.port }) : reject(new Error(m.error)),
    )
    child.send({ start: 'instant-registry', certPem, keyPem } satisfies ChildRequest)
  })
}

interface Load {
  rps: number
  p99: number
  p50: number
  errors: number
}
function load(
  origin: string,
  body: string | (() => string),
  options: { duration?: number; amount?: number; connections?: number } = {},
): Promise<Load> {
  const requests =
    typeof body === 'string'
      ? undefined
      : [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, body: body() }) }]
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${origin}/validate`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ...(typeof body === 'string' ? { body } : { requests }),
        connections: options.connections ?? 16,
        ...(options.amount === undefined ? { duration: options.duration ?? 10 } : { amount: options.amount }),
        timeout: 30,
      } as autocannon.Options,
      (err, r) =>
        err
          ? reject(err)
          : resolve({
              rps: r.requests.average,
              p50: r.latency.p50,
              p99: r.latency.p99,
              errors: r.errors + r.timeouts + r.non2xx,
            }),
    )
  })
}
const fmt = (l: Load): string =>
  `${Math.round(l.rps)} reviews/s, p50 ${l.p50} ms, p99 ${l.p99} ms${l.errors > 0 ? `, ${l.errors} errors` : ''}`

/** A Pod CREATE review in `namespace` with these images, as the API server sends it. */
function review(namespace: string, images: string[], uid: string): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: `p-${uid}`,
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'bench', groups: ['system:authenticated'] },
      dryRun: false,
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `p-${uid}`, namespace },
        spec: {
          serviceAccountName: 'app',
          imagePullSecrets: [{ name: 'pull-3' }],
          containers: images.map((image, i) => ({ name: `c${i}`, image })),
        },
      },
      oldObject: null,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  })
}

/** Runs a pullguard CLI command to its end: wall time and peak RSS (VmHWM, read until it exits). */
async function timed(
  args: string[],
  env: Record<string, string>,
): Promise<{ ms: number; peak: number; code: number | null; out: string }> {
  const started = performance.now()
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-2000)))
  child.stderr.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-2000)))
  let peak = 0
  const timer = setInterval(() => {
    try {
      const now = rssOf(child.pid!).peak
      if (Number.isFinite(now)) peak = Math.max(peak, now)
    } catch {
      // exited
    }
  }, 50)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  clearInterval(timer)
  return { ms: performance.now() - started, peak, code, out }
}

/** utime + stime of a process, in microseconds (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

/** Only pullguard's own lists and watches, in the API server's audit log: the restart is then told apart from the server's own informers. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["system:serviceaccount:pullguard:pullguard"]
    verbs: ["list", "watch"]
  - level: None
`

/** pullguard's lists completed and watches opened since `sinceMs`, from the audit log. */
function pullguardRequests(log: string, sinceMs: number): { lists: number; watches: number; listed: string[] } {
  let lists = 0
  let watches = 0
  const listed: string[] = []
  let text = ''
  try {
    text = readFileSync(log, 'utf8')
  } catch {
    return { lists, watches, listed }
  }
  for (const line of text.split('\n')) {
    if (line === '') continue
    let e: {
      verb?: string
      stage?: string
      requestReceivedTimestamp?: string
      requestURI?: string
      objectRef?: { resource?: string }
    }
    try {
      e = JSON.parse(line) as typeof e
    } catch {
      continue // the line kube-apiserver is still writing
    }
    if (Date.parse(e.requestReceivedTimestamp ?? '') < sinceMs) continue
    if (e.verb === 'list' && e.stage === 'ResponseComplete') {
      lists++
      const selector = /fieldSelector=([^&]*)/.exec(e.requestURI ?? '')?.[1]
      listed.push(`${e.objectRef?.resource ?? '?'}${selector === undefined ? '' : ` ${decodeURIComponent(selector)}`}`)
    }
    if (e.verb === 'watch' && e.stage === 'ResponseStarted') watches++
  }
  return { lists, watches, listed }
}

type Wrap = ((command: string, args: readonly string[]) => { command: string; args: string[] }) | undefined

/** `pullguard serve` as the pod runs it (NODE_ARGS, the Deployment's NODE_OPTIONS; in its memory cgroup through `wrap`). */
function startAsPod(
  cp: Awaited<ReturnType<typeof startControlPlane>>,
  installed: Awaited<ReturnType<typeof installPullguard>>,
  args: string[],
  wrap: Wrap,
): Promise<PullguardProcess> {
  return startPullguard(cp, {
    ...installed,
    args,
    discardOutput: false,
    nodeArgs: NODE_ARGS,
    env: { NODE_OPTIONS: POD.nodeOptions },
    ...(wrap === undefined ? {} : { wrap }),
  })
}

/** The instant registry's manifest requests so far, or those between two times. */
function manifestRequests(child: ChildProcess, window: { from?: number; to?: number } = {}): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: { manifestRequests?: number }): void => {
      if (m.manifestRequests === undefined) return
      child.off('message', on)
      resolve(m.manifestRequests)
    }
    child.on('message', on)
    child.send({ manifestRequests: true, ...window } satisfies ChildRequest)
  })
}

/**
 * One background audit pass of `serve`, measured: pullguard started with these flags (a short
 * interval, so the pass ends within the bench), until its first "audit pass completed" line. The
 * manifest requests are counted at the registry, within the pass's window.
 */
async function servePass(
  cp: Awaited<ReturnType<typeof startControlPlane>>,
  installed: Awaited<ReturnType<typeof installPullguard>>,
  registry: ChildProcess,
  args: string[],
  wrap: Wrap,
): Promise<string> {
  const started = Date.now()
  const pg = await startAsPod(cp, installed, args, wrap)
  try {
    let line: Record<string, unknown> | undefined
    while (line === undefined && Date.now() - started < 900_000) {
      line = pg.logs().find((l) => l['msg'] === 'audit pass completed')
      await new Promise((r) => setTimeout(r, 500))
    }
    if (line === undefined) return 'no pass completed within 15 minutes'
    const { rss, peak } = rssOf(pg.child.process.pid!)
    // The next pass begins as this one ends: only the requests within this one's window.
    const end = Number(line['time'])
    const requests = await manifestRequests(registry, { from: end - Number(line['durationMs']), to: end })
    return `${String(line['images'])} uses in ${String(line['workloads'])} workloads, ${String(line['questions'])} distinct questions, ${String(line['registryRequests'])} registry requests (${requests} manifest requests counted at the registry); pass ${seconds(Number(line['durationMs']))}, ${String(line['unverified'])} unverified; RSS ${mb(rss)} as it ended (peak since the start, the lists included, ${mb(peak)})`
  } finally {
    await pg.stop()
  }
}

/** `pullguard audit -A`, measured: time, peak RSS, and what its JSON summary says it asked. */
async function auditAll(
  registry: ChildProcess,
  env: Record<string, string>,
  args: string[],
): Promise<{ line: string; questions: number; ms: number }> {
  const before = await manifestRequests(registry)
  const audit = await timed(['audit', '-A', '--audit-registry-qps', '100', '-o', 'json', ...args], env)
  const requests = (await manifestRequests(registry)) - before
  const summary = /"summary": (\{[^}]*\})/.exec(audit.out)?.[1]
  const s = (summary === undefined ? {} : JSON.parse(summary)) as Record<string, number>
  if (audit.code !== 0 && audit.code !== 1) process.stdout.write(`audit -A output: ${audit.out}\n`)
  return {
    line: `${seconds(audit.ms)}, peak RSS ${mb(audit.peak)} (exit ${audit.code}); ${s['images']} uses in ${s['workloads']} workloads, ${s['questions']} distinct questions, ${s['registryRequests']} registry requests (${requests} manifest requests counted at the registry)`,
    questions: s['questions'] ?? NaN,
    ms: audit.ms,
  }
}

/**
 * The workloads again, as on EKS: the same images on a host no pull secret names (`localhost`, the
 * same registry), so every pod pulls with the nodes' credentials. The old workloads are deleted first.
 */
async function replaceWithNodeCredentialWorkloads(pool: Pool, token: string, port: number): Promise<number> {
  const paths = Array.from({ length: NAMESPACES }, (_, i) => [
    `/apis/apps/v1/namespaces/${ns(i)}/deployments`,
    `/api/v1/namespaces/${ns(i)}/pods`,
  ]).flat()
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < paths.length; i = next++) {
      const res = await pool.request({
        method: 'DELETE',
        path: paths[i]!,
        headers: { authorization: `Bearer ${token}` },
      })
      await res.body.dump()
      if (res.statusCode !== 200) throw new Error(`DELETE ${paths[i]}: HTTP ${res.statusCode}`)
    }
  }
  await Promise.all(Array.from({ length: FILL_CONCURRENCY }, worker))
  return createAll(pool, token, namespaceObjects(`localhost:${port}`, 'workloads'))
}

export async function scalePhase(report: Report): Promise<void> {
  const auditDir = mkdtempSync(join(tmpdir(), 'pullguard-scale-audit-'))
  writeFileSync(join(auditDir, 'policy.yaml'), AUDIT_POLICY)
  const auditLog = join(auditDir, 'audit.log')
  const cp = await startControlPlane({
    apiserverArgs: [
      '--audit-policy-file',
      join(auditDir, 'policy.yaml'),
      '--audit-log-path',
      auditLog,
      '--audit-log-maxsize',
      '1000',
    ],
  })
  const token = JSON.parse(readFileSync(cp.adminKubeconfig, 'utf8')).users[0].user.token as string
  const pool = new Pool(cp.server, { connections: FILL_CONCURRENCY, connect: { ca: cp.ca.caPem } })
  const registryCert = await cp.ca.issue('bench instant registry', { dns: ['localhost'], ips: ['127.0.0.1'] })
  const instant = await startInstantRegistry(registryCert.certPem, registryCert.keyPem)
  const registry = `127.0.0.1:${instant.port}`
  let pullguard: PullguardProcess | undefined
  // Writing a heap snapshot takes several times the heap: inside the limit, the cgroup would kill it.
  const made =
    SNAPSHOTS === undefined
      ? memoryCgroup(`pullguard-bench-${process.pid}`, POD.memoryLimitBytes)
      : { unavailable: 'BENCH_HEAP_SNAPSHOT is set, and writing a snapshot inside the memory limit is an OOM kill' }
  const cgroup: MemoryCgroup | undefined = 'procs' in made ? made : undefined
  const wrap =
    cgroup === undefined ? undefined : (command: string, args: readonly string[]) => inCgroup(cgroup, command, args)
  report(
    'scale: pullguard runs as the Deployment does',
    `NODE_OPTIONS ${POD.nodeOptions}, node ${POD.entrypointFlags.join(' ')}${TRIED.length > 0 ? ` plus ${TRIED.join(' ')} (BENCH_NODE_ARGS)` : ''}, ${cgroup === undefined ? `NOT in a memory cgroup (${(made as { unavailable: string }).unavailable}): V8 sizes its heap for this host, RSS reads high` : `in a memory cgroup with the memory limit (${cgroup.description})`}`,
  )
  try {
    const installed = await installPullguard(cp)
    const base = ['--registry-ca', cp.ca.caPath, '--log-level', 'info', '--timeout', '8s']
    const args = [...base, '--audit-interval', '1h']
    const warmBody = review('pullguard-small', [`${registry}/team/app-1:1.0`, `${registry}/team/app-2:1.0`], 'warm')

    // The small cluster: the same review, against a cluster with nothing in it.
    await cp.kubectlOk(['create', 'namespace', 'pullguard-small'])
    pullguard = await startAsPod(cp, installed, args, wrap)
    await load(pullguard.origin, warmBody, { duration: 3 })
    const small = await load(pullguard.origin, warmBody)
    report('scale: warm review, small cluster', fmt(small))
    await pullguard.stop()
    // The rest sends reviews to pullguard directly: without the webhook, the fill is not judged.
    await cp.kubectlOk(['delete', 'validatingwebhookconfiguration', '--all'])

    // Fill the cluster.
    const fillStarted = performance.now()
    const cluster = await createAll(pool, token, clusterObjects())
    const inNamespaces =
      (await createAll(pool, token, namespaceObjects(registry, 'accounts'))) +
      (await createAll(pool, token, namespaceObjects(registry, 'workloads')))
    report(
      'scale: objects created',
      `${cluster + inNamespaces} (${NAMESPACES} namespaces, ${NAMESPACES * SECRETS_PER_NS} pull secrets, ${NAMESPACES * ACCOUNTS_PER_NS} service accounts, ${NAMESPACES * (DEPLOYMENTS_PER_NS + PODS_PER_NS)} workloads, ${NODES} nodes) in ${seconds(performance.now() - fillStarted)}`,
    )

    // Start in the big cluster.
    const started = Date.now()
    pullguard = await startAsPod(cp, installed, args, wrap)
    const ready = Date.now() - started
    // Every copy logs "cache synced" once listed: the pull secrets, accounts and namespaces, and the
    // audit's workloads (this replica leads). Done when the core three are there and no other came for 5 s.
    const deadline = Date.now() + 300_000
    const expected = ['secrets', 'serviceaccounts', 'namespaces']
    let synced: Array<Record<string, unknown>> = []
    let changed = Date.now()
    while (Date.now() < deadline) {
      const now = pullguard.logs().filter((l) => l['msg'] === 'cache synced')
      if (now.length !== synced.length) changed = Date.now()
      synced = now
      const names = synced.map((l) => String(l['cache']))
      if (
        expected.every((e) => names.some((n) => n.startsWith(e))) &&
        names.some((n) => n.startsWith('pods')) &&
        Date.now() - changed > 5_000
      )
        break
      await new Promise((r) => setTimeout(r, 200))
    }
    const lastSync = Math.max(...synced.map((l) => Number(l['time'])))
    report('scale: start to /readyz', seconds(ready), '<= 10 s')
    report(
      'scale: start to every watched copy listed',
      `${seconds(lastSync - started)} (${synced.map((l) => `${String(l['cache'])} ${String(l['objects'])}`).join(', ')})`,
      '<= 10 s',
    )
    report('scale: memory at ready', await memory(pullguard))
    await snapshot(pullguard)

    // Warm throughput with the big cluster watched.
    const warm = review(ns(1), [`${registry}/team/app-1:1.0`, `${registry}/team/app-2:1.0`], 'warm')
    await load(pullguard.origin, warm, { duration: 3 })
    const big = await load(pullguard.origin, warm)
    report(
      'scale: warm review, big cluster',
      `${fmt(big)} (${(big.rps / small.rps).toFixed(2)}× the small cluster's throughput, p99 ${big.p99 - small.p99 >= 0 ? '+' : ''}${big.p99 - small.p99} ms)`,
      'no slower',
    )

    // 100,000 cached answers: distinct images, each a registry answer kept in the result cache.
    let n = 0
    const distinct = (): string => {
      const i = n++
      return review(ns(i % NAMESPACES), [`${registry}/fill/app-${i}:1.0`], `fill-${i}`)
    }
    resetPeak(pullguard.child.process.pid!)
    const fill = await load(pullguard.origin, distinct, { amount: CACHED_ANSWERS, connections: 32 })
    const fillPeak = rssOf(pullguard.child.process.pid!).peak
    report(
      `scale: memory with ${CACHED_ANSWERS} cached answers`,
      `${await memory(pullguard)}; peak RSS while filling ${mb(fillPeak)} (at ${Math.round(fill.rps)} reviews/s${fill.errors > 0 ? `, ${fill.errors} errors` : ''})`,
      '<= 250 MB RSS',
    )
    await snapshot(pullguard)

    // An hour of secret churn in a minute: updates and delete-and-create, at a steady rate.
    const churnStarted = performance.now()
    let ops = 0
    const churnEnd = churnStarted + CHURN_SECONDS * 1000
    while (performance.now() < churnEnd) {
      const tick = performance.now()
      const batch = Array.from({ length: CHURN_RATE / 10 }, () => ops++)
      await Promise.all(
        batch.map(async (k) => {
          const i = (k * 7919) % NAMESPACES
          const name = `pull-${4}`
          const path = `/api/v1/namespaces/${ns(i)}/secrets`
          if (k % 2 === 0) {
            const body = {
              apiVersion: 'v1',
              kind: 'Secret',
              type: 'kubernetes.io/dockerconfigjson',
              metadata: { name, namespace: ns(i) },
              data: { '.dockerconfigjson': dockerConfig(k + 1_000_000, registry) },
            }
            const res = await pool.request({
              method: 'PUT',
              path: `${path}/${name}`,
              body: JSON.stringify(body),
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            })
            await res.body.dump()
          } else {
            const del = await pool.request({
              method: 'DELETE',
              path: `${path}/${name}`,
              headers: { authorization: `Bearer ${token}` },
            })
            await del.body.dump()
            const body = {
              apiVersion: 'v1',
              kind: 'Secret',
              type: 'kubernetes.io/dockerconfigjson',
              metadata: { name, namespace: ns(i) },
              data: { '.dockerconfigjson': dockerConfig(k, registry) },
            }
            const res = await pool.request({
              method: 'POST',
              path,
              body: JSON.stringify(body),
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            })
            await res.body.dump()
          }
        }),
      )
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (performance.now() - tick))))
    }
    report(`scale: memory after ${ops} secret changes in ${CHURN_SECONDS} s`, await memory(pullguard))

    // A watch reconnect: the API server restarts, every watch breaks; the new server's counters
    // start at zero, so its LISTs are the copies' re-lists and its open WATCHes their resumptions.
    const copies = pullguard.logs().filter((l) => l['msg'] === 'cache synced').length
    const cpuBefore = cpuMicros(pullguard.child.process.pid!)
    const restartedAt = Date.now()
    const restarted = performance.now()
    await cp.restartApiserver()
    let after = pullguardRequests(auditLog, restartedAt)
    while (performance.now() - restarted < 120_000 && after.watches < copies) {
      await new Promise((r) => setTimeout(r, 250))
      after = pullguardRequests(auditLog, restartedAt)
    }
    const reconnectMs = performance.now() - restarted
    // Lists that follow a 410 come a little later: counted after the watches are back.
    await new Promise((r) => setTimeout(r, 5_000))
    after = pullguardRequests(auditLog, restartedAt)
    const expired = pullguard
      .logs()
      .filter((l) => l['msg'] === 'watch expired (410 Gone); listing again' && Number(l['time']) >= restartedAt)
      .map((l) => String(l['cache']))
    report(
      'scale: watch reconnect after an API server restart',
      `${Math.min(after.watches, copies)} of ${copies} watches open again ${seconds(reconnectMs)} after the restart began, ${after.lists} lists${after.lists > 0 ? ` (${[...new Set(after.listed)].join(', ')})` : ''}${expired.length > 0 ? `, ${expired.length} of them after the new API server answered 410 Gone (its watch cache no longer had the version)` : ''}, pullguard CPU ${Math.round((cpuMicros(pullguard.child.process.pid!) - cpuBefore) / 1000)} ms (from the API server's audit log: pullguard's own requests)`,
      '0 lists',
    )

    // One background audit pass over the big cluster, with an interval short enough to end here
    // and long enough for its questions (about five a namespace) at 100 a second, with room: the
    // host is asked one question at a time, so a pass at exactly its rate has none to lose.
    await pullguard.stop()
    pullguard = undefined
    const interval = Math.max(60, Math.ceil((NAMESPACES * 5 * 16) / 1000))
    report(
      `scale: one serve audit pass (--audit-interval ${interval}s --audit-registry-qps 100)`,
      await servePass(
        cp,
        installed,
        instant.child,
        [...base, '--audit-interval', `${interval}s`, '--audit-registry-qps', '100'],
        wrap,
      ),
    )

    // The one-shot commands over the whole cluster (BENCH_SCALE_CLI=0 skips them: audit -A paces its registry requests).
    const cli = process.env['BENCH_SCALE_CLI'] !== '0'
    const env = { KUBECONFIG: cp.adminKubeconfig, HOME: '/nonexistent' }
    if (cli) {
      const diagnose = await timed(['diagnose', 'namespace', '-A', '--registry-ca', cp.ca.caPath], env)
      report(
        'scale: pullguard diagnose namespace -A',
        `${seconds(diagnose.ms)}, peak RSS ${mb(diagnose.peak)} (exit ${diagnose.code})`,
      )
      const audit = await auditAll(instant.child, env, ['--registry-ca', cp.ca.caPath])
      report(
        'scale: pullguard audit -A --audit-registry-qps 100',
        audit.line,
        `<= ${seconds(audit.questions * 10 + 30_000)} (questions / 100 + 30 s), <= 250 MB peak RSS`,
      )
    }

    // As on EKS: every pod pulls with the nodes' credentials.
    const replaced = await replaceWithNodeCredentialWorkloads(pool, token, instant.port)
    const nodeConfig = join(auditDir, 'node-config.json')
    writeFileSync(
      nodeConfig,
      JSON.stringify({
        auths: { [`localhost:${instant.port}`]: { auth: Buffer.from('node:token').toString('base64') } },
      }),
    )
    report(
      `scale, node credentials: one serve audit pass at the default qps (${replaced} workloads on localhost:${instant.port}, --audit-interval 60s)`,
      await servePass(
        cp,
        installed,
        instant.child,
        [...base, '--audit-interval', '60s', '--node-docker-config', nodeConfig],
        wrap,
      ),
      `<= ${IMAGES} requests; ${IMAGES} questions at 2 a second need ${IMAGES / 2} s of the 1h interval`,
    )
    if (cli) {
      const audit = await auditAll(instant.child, env, [
        '--registry-ca',
        cp.ca.caPath,
        '--node-docker-config',
        nodeConfig,
      ])
      report(
        'scale, node credentials: pullguard audit -A --audit-registry-qps 100',
        audit.line,
        `<= ${IMAGES} requests`,
      )
    }
  } finally {
    await pool.close()
    await pullguard?.stop()
    await cgroup?.remove()
    instant.child.kill()
    await cp.close()
    rmSync(auditDir, { recursive: true, force: true })
  }
}
