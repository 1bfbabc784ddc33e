// Control planes shared by the end-to-end files: the test command (test/tiers/run.ts) starts one
// etcd and kube-apiserver per tap job before the e2e tier and stops them after it, and each file
// uses one of them instead of starting its own (about 3 s of start and stop per file, and the CPU
// of a start). The planes are named to the files by one environment variable,
// PULLGUARD_SHARED_CONTROL_PLANES: a folder with one subfolder per plane, holding plane.json (the
// API server's address, the admin kubeconfig and token, the CA's certificate and key, etcd's
// address, the API server's log file, and the etcd keys the plane started with).
//
// A file holds its plane alone, from startControlPlane() to close(): a lock folder holding the
// file's pid (a dead holder's lock is taken over). Taking it, the file puts the plane back as it
// started: every etcd key written since then is deleted, outside what the API server itself keeps
// (kube-system, its allocators and API priorities). So each file sees the fresh cluster it saw when
// it started its own: no namespace, workload, webhook configuration, RBAC object or Lease of the
// files before it, and `audit -A` or `diagnose -A` find only its own. (Deleting in etcd is also the
// only way to remove a namespace here: the namespace controller does not run.) Files that need an
// API server of their own (other flags, a restart) still start one: see startControlPlane.
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { loadTestCA } from '../helpers/pki.js'
import { ensureClusterBinaries } from './binaries.js'
import {
  adminClient,
  SHARED_CONTROL_PLANES_ENV,
  startOwnControlPlane,
  type ControlPlane,
  type OwnControlPlane,
} from './control-plane.js'
import { alive, removeOnExit, waitFor } from './processes.js'

/** kube-apiserver's own etcd prefix (its --etcd-prefix default). */
const PREFIX = '/registry/'
/** Written by the API server itself, after the start or at any time: never the tests'. */
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease'])
const SYSTEM_PREFIXES = [
  'ranges/',
  'masterleases/',
  'apiregistration.k8s.io/',
  'flowschemas/',
  'prioritylevelconfigurations/',
  'priorityclasses/',
].map((p) => PREFIX + p)
/** etcd refuses a transaction of more than 128 operations (its --max-txn-ops default). */
const TXN_OPS = 100
/** A file waits this long for a plane another file holds (tap runs as many files at once as there are planes). */
const HOLD_WAIT_MS = 10 * 60_000
/** What a file may read of the shared API server's log: the end of what was written while it held the plane. */
const MAX_LOG_BYTES = 64_000
/** The lists that show the API server has seen the reset (it reads etcd through its watch cache). */
const SETTLED_LISTS = [
  '/api/v1/namespaces',
  '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
  '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
]

interface PlaneInfo {
  server: string
  adminToken: string
  adminKubeconfig: string
  caPath: string
  caKeyPath: string
  etcdUrl: string
  apiserverLogFile: string
  apiserverPid: number
  /** etcd keys at the start, each as etcd's base64. */
  baselineKeys: string[]
  /** Names each of SETTLED_LISTS held at the start. */
  baselineLists: Record<string, string[]>
}

export interface ControlPlanePool {
  /** The environment that gives the planes to the test files. */
  env: Record<string, string>
  close(): Promise<void>
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8')

async function etcd(url: string, path: string, body: unknown): Promise<any> {
  const res = await request(`${url}/v3/${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`etcd ${path}: HTTP ${res.statusCode}: ${text}`)
  return JSON.parse(text)
}

/** Every key under the API server's prefix, as etcd's base64. */
async function keys(etcdUrl: string): Promise<string[]> {
  // range_end: the prefix with its last byte + 1 ('/' + 1 = '0').
  const answer = (await etcd(etcdUrl, 'kv/range', {
    key: b64(PREFIX),
    range_end: b64(`${PREFIX.slice(0, -1)}0`),
    keys_only: true,
  })) as { kvs?: Array<{ key: string }> }
  return (answer.kvs ?? []).map((kv) => kv.key)
}

function isSystemKey(key: string): boolean {
  if (SYSTEM_PREFIXES.some((p) => key.startsWith(p))) return true
  // /registry/<resource>/<namespace>/<name> or /registry/<group>/<resource>/<namespace>/<name>
  return key
    .slice(PREFIX.length)
    .split('/')
    .slice(0, -1)
    .some((segment) => SYSTEM_NAMESPACES.has(segment))
}

async function listNames(getRaw: ControlPlane['getRaw'], path: string): Promise<string[]> {
  const { status, text } = await getRaw(path)
  if (status !== 200) throw new Error(`GET ${path}: HTTP ${status}`)
  return (JSON.parse(text) as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name).sort()
}

/** Starts `count` control planes in a new folder; close() stops them and removes it. */
export async function startControlPlanePool(count: number): Promise<ControlPlanePool> {
  const root = await mkdtemp(join(tmpdir(), 'pullguard-planes-'))
  const planes: OwnControlPlane[] = []
  const keepRoot = removeOnExit([root])
  const close = async (): Promise<void> => {
    await Promise.all(planes.map((p) => p.close()))
    await rm(root, { recursive: true, force: true })
    keepRoot()
  }
  try {
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const dir = join(root, `plane-${i}`)
        await mkdir(dir)
        const apiserverLogFile = join(dir, 'kube-apiserver.log')
        const cp = await startOwnControlPlane({ apiserverLogFile })
        planes.push(cp)
        const baselineLists: Record<string, string[]> = {}
        for (const path of SETTLED_LISTS) baselineLists[path] = await listNames(cp.getRaw, path)
        const info: PlaneInfo = {
          server: cp.server,
          adminToken: cp.adminToken,
          adminKubeconfig: cp.adminKubeconfig,
          caPath: cp.ca.caPath,
          caKeyPath: cp.ca.caKeyPath,
          etcdUrl: cp.etcdUrl,
          apiserverLogFile,
          apiserverPid: cp.apiserverPid,
          baselineKeys: await keys(cp.etcdUrl),
          baselineLists,
        }
        await writeFile(join(dir, 'plane.json'), JSON.stringify(info))
      }),
    )
  } catch (err) {
    await close()
    throw err
  }
  return { env: { [SHARED_CONTROL_PLANES_ENV]: root }, close }
}

/** Takes a free plane of the pool (mkdir of its lock folder is atomic); waits while all are held. */
async function hold(root: string): Promise<{ dir: string; lock: string }> {
  const started = Date.now()
  for (;;) {
    const planes = readdirSync(root)
      .filter((d) => d.startsWith('plane-'))
      .sort()
    if (planes.length === 0) throw new Error(`${SHARED_CONTROL_PLANES_ENV}=${root} holds no control plane`)
    for (const plane of planes) {
      const dir = join(root, plane)
      const lock = join(dir, 'held')
      try {
        await mkdir(lock)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        let holder = NaN
        try {
          holder = Number(readFileSync(join(lock, 'pid'), 'utf8'))
        } catch {
          // the holder is between mkdir and writing its pid
        }
        if (Number.isInteger(holder) && holder > 0 && !alive(holder)) rmSync(lock, { recursive: true, force: true })
        continue
      }
      await writeFile(join(lock, 'pid'), String(process.pid))
      return { dir, lock }
    }
    if (Date.now() - started > HOLD_WAIT_MS)
      throw new Error(`no shared control plane in ${root} was free for ${HOLD_WAIT_MS / 60_000} min`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** Deletes every key written since the plane started, outside the API server's own; then waits until the API server shows it. */
async function reset(info: PlaneInfo, getRaw: ControlPlane['getRaw']): Promise<void> {
  const baseline = new Set(info.baselineKeys)
  const stale = (await keys(info.etcdUrl)).filter((key) => !baseline.has(key) && !isSystemKey(unb64(key)))
  for (let i = 0; i < stale.length; i += TXN_OPS) {
    await etcd(info.etcdUrl, 'kv/txn', {
      success: stale.slice(i, i + TXN_OPS).map((key) => ({ request_delete_range: { key } })),
    })
  }
  let now: Record<string, string[]> = {}
  await waitFor(
    'the shared control plane as it started',
    async () => {
      now = {}
      for (const path of SETTLED_LISTS) now[path] = await listNames(getRaw, path)
      return SETTLED_LISTS.every((path) => JSON.stringify(now[path]) === JSON.stringify(info.baselineLists[path]))
    },
    30_000,
    () => JSON.stringify({ now, baseline: info.baselineLists }),
  )
}

/** One of the test command's planes, held by this file until close(), as it was when it started. */
export async function attachSharedControlPlane(root: string): Promise<ControlPlane> {
  const binaries = await ensureClusterBinaries()
  const held = await hold(root)
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-cluster-'))
  const info = JSON.parse(await readFile(join(held.dir, 'plane.json'), 'utf8')) as PlaneInfo
  const ca = await loadTestCA(info.caPath, info.caKeyPath)
  const agent = new Agent({ connect: { ca: ca.caPem } })
  // Removing the lock folder frees the plane; a file that ends without close() (a crash, tap's timeout) frees it too.
  const leaveOnExit = removeOnExit([dir, ca.dir, held.lock])
  const close = async (): Promise<void> => {
    await agent.close()
    await ca.close()
    await rm(dir, { recursive: true, force: true })
    await rm(held.lock, { recursive: true, force: true })
    leaveOnExit()
  }
  try {
    const client = adminClient({
      server: info.server,
      caPem: ca.caPem,
      adminToken: info.adminToken,
      adminKubeconfig: info.adminKubeconfig,
      kubectlBinary: binaries.kubectl,
      agent,
      dir,
    })
    await reset(info, client.getRaw)
    // The API server's log from here on is this file's.
    const logFrom = (await readFile(info.apiserverLogFile)).length
    const own = (): never => {
      throw new Error(
        'a shared control plane cannot be restarted or given a service proxy: startControlPlane({ serviceProxy: true }) or with apiserverArgs starts one of its own',
      )
    }
    return {
      server: info.server,
      ca,
      binaries,
      adminKubeconfig: info.adminKubeconfig,
      ...client,
      apiserverLog() {
        const log = readFileSync(info.apiserverLogFile)
        return log.subarray(Math.max(logFrom, log.length - MAX_LOG_BYTES)).toString('utf8')
      },
      apiserverPid: info.apiserverPid,
      restartApiserver: async () => own(),
      routeService: async () => own(),
      proxied: () => [],
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
