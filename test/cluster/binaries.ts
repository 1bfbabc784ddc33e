// kube-apiserver, kubectl and etcd (and helm, for the chart's tests; the kubelet and containerd, for
// the node tier) built from the Go modules beside this file once into a cache outside the repository,
// keyed by a hash of each module's files, so a changed pin builds anew and an unchanged one never
// builds twice:
// - this folder's module pins k8s.io/kubernetes v1.37.2 and the etcd it pins (the kubelet is built
//   from it too, a toolset of its own so the tiers without a node never wait for it);
// - helm/ is its own module (helm.sh/helm/v4 v4.3.1 with the versions it asks for), so helm's
//   dependencies never change what the API server is built from;
// - containerd/ is its own module (containerd v2.4.2 and its runc shim, with the versions containerd
//   asks for) and holds pause/, the static program every test image runs;
// - containers-image/ is its own module (go.podman.io/image/v5 v5.38.0 with the versions it asks
//   for): containers-image-ref, containers-image's own answers that pullguard's CRI-O answers are
//   compared with (containers-image.ts).
// Parallel test files wait on one lock instead of building at once. The test command (test/tiers)
// starts the builds its tiers need in the background, so the tiers that need none run meanwhile.
//
// 1. Go ≥ 1.26 must be on PATH; otherwise one message says exactly what to install.
// 2. Under the lock: if the key's folder exists, use it; else `go build` into a temporary folder
//    beside it and rename it into place (a crashed build never leaves a half-filled cache).
// 3. A lock whose owner has died is taken over; a live one is waited for.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { homedir, setPriority } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { takeLock } from './processes.js'

/** From dist/test/cluster/ (where this runs) to the Go module in the source tree. */
export const MODULE_DIR = fileURLToPath(new URL('../../../test/cluster/', import.meta.url))

interface Toolset {
  /** Folder of the Go module, under MODULE_DIR. */
  dir: string
  /** What the hash covers: the pins and any source of our own. */
  files: readonly string[]
  packages: readonly string[]
  binaries: readonly string[]
  ldflags?: string
  /** `go build -tags`. */
  tags?: string
  /** More environment for `go build`. */
  env?: Readonly<Record<string, string>>
  what: string
  coldMinutes: number
}

const KUBERNETES_VERSION = 'v1.37.2'
// The version a release build stamps (hack/lib/version.sh): the API server's /version, which
// kubectl and helm read (a chart's kubeVersion), and the node's kubeletVersion say v1.37.2 instead
// of v0.0.0-master.
const KUBERNETES_LDFLAGS = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']
  .map(
    (pkg) =>
      `-X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=37 -X ${pkg}.gitTreeState=clean`,
  )
  .join(' ')
const CLUSTER: Toolset = {
  dir: '.',
  files: ['go.mod', 'go.sum', 'etcd/main.go'],
  packages: ['k8s.io/kubernetes/cmd/kube-apiserver', 'k8s.io/kubernetes/cmd/kubectl', './etcd'],
  binaries: ['kube-apiserver', 'kubectl', 'etcd'],
  ldflags: KUBERNETES_LDFLAGS,
  what: `kube-apiserver, kubectl and etcd (k8s.io/kubernetes ${KUBERNETES_VERSION})`,
  coldMinutes: 5,
}
// About 300 packages beyond kube-apiserver's: about 90 s once those are in the Go build cache.
const KUBELET: Toolset = {
  dir: '.',
  files: ['go.mod', 'go.sum'],
  packages: ['k8s.io/kubernetes/cmd/kubelet'],
  binaries: ['kubelet'],
  ldflags: KUBERNETES_LDFLAGS,
  what: `the kubelet (k8s.io/kubernetes ${KUBERNETES_VERSION})`,
  coldMinutes: 2,
}
const CONTAINERD_VERSION = 'v2.4.2'
const CONTAINERD: Toolset = {
  dir: 'containerd',
  files: ['go.mod', 'go.sum', 'pause/main.go'],
  packages: [
    'github.com/containerd/containerd/v2/cmd/containerd',
    'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2',
    './pause',
  ],
  binaries: ['containerd', 'containerd-shim-runc-v2', 'pause'],
  // `containerd --version` says the release, as a released binary does.
  ldflags: `-X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION}`,
  // The snapshotters that need C libraries or host tools are left out; the node uses overlayfs.
  tags: 'no_btrfs,no_devmapper,no_zfs',
  // pause runs inside the test images, which hold nothing else: it must be static.
  env: { CGO_ENABLED: '0' },
  what: `containerd and its runc shim (containerd ${CONTAINERD_VERSION}) and the test images' pause program`,
  coldMinutes: 1,
}
const HELM_VERSION = 'v4.3.1'
const HELM: Toolset = {
  dir: 'helm',
  files: ['go.mod', 'go.sum'],
  packages: ['helm.sh/helm/v4/cmd/helm'],
  binaries: ['helm'],
  // `helm version` says the release, as a released binary does (a module build says only v4.3).
  ldflags: `-X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}`,
  what: `helm (helm.sh/helm/v4 ${HELM_VERSION})`,
  coldMinutes: 2,
}
const CONTAINERS_IMAGE_VERSION = 'v5.38.0'
const CONTAINERS_IMAGE: Toolset = {
  dir: 'containers-image',
  files: ['go.mod', 'go.sum', 'main.go'],
  // `go build -o <dir>/ .` names the binary after the module path's last element: the module is
  // pullguard.test/cluster/containers-image-ref.
  packages: ['.'],
  binaries: ['containers-image-ref'],
  // No C: signatures are checked with Go's openpgp instead of gpgme. Only containers_image_openpgp
  // changes this build today; the rest keep it C-free should it import the storage or daemon
  // transports (containers-image's README, "Building").
  tags: 'containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,containers_image_storage_stub,containers_image_docker_daemon_stub',
  env: { CGO_ENABLED: '0' },
  what: `containers-image-ref (go.podman.io/image/v5 ${CONTAINERS_IMAGE_VERSION})`,
  // 25 s on 2 cores with an empty Go build cache (the modules already downloaded).
  coldMinutes: 1,
}
const KREW_VERSION = 'v0.4.3'
const KREW: Toolset = {
  dir: 'krew',
  files: ['go.mod', 'go.sum'],
  // The plugin manager and the validator krew-index runs on every manifest submitted to it.
  packages: ['sigs.k8s.io/krew/cmd/krew', 'sigs.k8s.io/krew/cmd/validate-krew-manifest'],
  binaries: ['krew', 'validate-krew-manifest'],
  what: `krew and validate-krew-manifest (sigs.k8s.io/krew ${KREW_VERSION})`,
  // 10 s with the modules downloaded.
  coldMinutes: 1,
}
/** The Go builds a test tier can ask for (test/tiers/tiers.ts), by name. */
export const TOOLSETS = {
  cluster: CLUSTER,
  helm: HELM,
  kubelet: KUBELET,
  containerd: CONTAINERD,
  containersImage: CONTAINERS_IMAGE,
  krew: KREW,
} as const satisfies Record<string, Toolset>
export type ToolsetName = keyof typeof TOOLSETS

const MIN_GO: readonly [number, number] = [1, 26]
const BUILD_NICENESS = 10
/** A cold build takes about 5 minutes on 2 cores; a lock held past this is no longer believed. */
const LOCK_WAIT_MS = 30 * 60_000

export const GO_HINT =
  'the end-to-end and node tests build kube-apiserver, etcd, kubectl, helm, the kubelet and containerd from Go modules: install Go 1.26 or newer ' +
  "(https://go.dev/dl/, or your distribution's golang package) and put `go` on PATH"

export class ClusterBinaryError extends Error {
  constructor(
    readonly code: 'GoMissing' | 'GoTooOld' | 'BuildFailed' | 'LockTimeout',
    message: string,
  ) {
    super(message)
    this.name = 'ClusterBinaryError'
  }
}

export interface ClusterBinaries {
  kubeApiserver: string
  kubectl: string
  etcd: string
  helm: string
}

function cacheRoot(): string {
  const base =
    process.env['XDG_CACHE_HOME'] !== undefined && process.env['XDG_CACHE_HOME'] !== ''
      ? process.env['XDG_CACHE_HOME']
      : join(homedir(), '.cache')
  return join(base, 'pullguard', 'test-cluster')
}

function toolsetHash(set: Toolset): string {
  const hash = createHash('sha256')
  for (const file of set.files)
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(MODULE_DIR, set.dir, file)))
      .update('\0')
  hash.update(`dir\0${set.dir}\0ldflags\0${set.ldflags ?? ''}\0`)
  if (set.tags !== undefined) hash.update(`tags\0${set.tags}\0`)
  if (set.env !== undefined) hash.update(`env\0${JSON.stringify(set.env)}\0`)
  return hash.digest('hex').slice(0, 16)
}

/** The cache key of kube-apiserver, kubectl and etcd. */
export function moduleHash(): string {
  return toolsetHash(CLUSTER)
}

function complete(set: Toolset, dir: string): boolean {
  return set.binaries.every((b) => existsSync(join(dir, b)))
}

/** `go1.26.8` → ok; anything older, or no go at all, is a ClusterBinaryError saying what to install. */
export function checkGo(): string {
  const run = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8', env: goEnv() })
  if (run.error !== undefined || run.status !== 0) throw new ClusterBinaryError('GoMissing', `go not found: ${GO_HINT}`)
  const version = run.stdout.trim()
  const m = /^go(\d+)\.(\d+)/.exec(version)
  const major = Number(m?.[1] ?? 0)
  const minor = Number(m?.[2] ?? 0)
  if (major < MIN_GO[0] || (major === MIN_GO[0] && minor < MIN_GO[1])) {
    throw new ClusterBinaryError('GoTooOld', `${version} is too old: ${GO_HINT}`)
  }
  return version
}

/** GOTOOLCHAIN=local: go.mod's `go` line must never make go download another toolchain. */
function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly -buildvcs=false' }
}

/** One build of a toolset at a time on this machine, whichever process asks. */
async function withLock<T>(lockDir: string, work: () => Promise<T>): Promise<T> {
  const release = await takeLock(
    lockDir,
    LOCK_WAIT_MS,
    () =>
      new ClusterBinaryError(
        'LockTimeout',
        `waited ${LOCK_WAIT_MS / 60_000} min for ${lockDir}; remove it if no build is running`,
      ),
  )
  try {
    return await work()
  } finally {
    release()
  }
}

/** Builds still running when this process exits (a test command stopped with Ctrl-C) are stopped with it. */
const building = new Set<ChildProcess>()
let exitHooked = false

function build(set: Toolset, into: string, log: (line: string) => void): Promise<void> {
  if (!exitHooked) {
    exitHooked = true
    process.once('exit', () => {
      for (const child of building) child.kill('SIGKILL')
    })
  }
  return new Promise((resolve, reject) => {
    const started = Date.now()
    log(`building ${set.what} into ${into}; a cold Go build cache takes about ${set.coldMinutes} minutes`)
    const flags = [
      ...(set.ldflags === undefined ? [] : ['-ldflags', set.ldflags]),
      ...(set.tags === undefined ? [] : ['-tags', set.tags]),
    ]
    const child = spawn('go', ['build', ...flags, '-o', `${into}/`, ...set.packages], {
      cwd: join(MODULE_DIR, set.dir),
      env: { ...goEnv(), ...set.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    building.add(child)
    // Below the tests' priority (its compilers inherit it): the tiers that run while it builds keep
    // the CPU their timings expect, and it takes what they leave.
    try {
      if (child.pid !== undefined) setPriority(child.pid, BUILD_NICENESS)
    } catch {
      // not allowed here: it builds at the tests' priority
    }
    let output = ''
    const keep = (c: Buffer): void => {
      output = (output + c.toString('utf8')).slice(-20_000)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', (err) => reject(new ClusterBinaryError('BuildFailed', `go build: ${err.message}`)))
    child.on('close', (code) => {
      building.delete(child)
      if (code === 0) {
        log(`built in ${Math.round((Date.now() - started) / 1000)} s`)
        resolve()
      } else reject(new ClusterBinaryError('BuildFailed', `go build exited with ${code}:\n${output}`))
    })
  })
}

/** The toolset's cached folder, building it first if its pins have never been built here. */
async function ensureToolset(set: Toolset, log: (line: string) => void): Promise<string> {
  const root = cacheRoot()
  const dir = join(root, toolsetHash(set))
  if (complete(set, dir)) return dir
  checkGo()
  mkdirSync(root, { recursive: true })
  return withLock(`${dir}.lock`, async () => {
    if (complete(set, dir)) return dir
    const tmp = `${dir}.tmp-${process.pid}`
    rmSync(tmp, { recursive: true, force: true })
    try {
      await build(set, tmp, log)
      rmSync(dir, { recursive: true, force: true })
      renameSync(tmp, dir)
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
    return dir
  })
}

const ready = new Map<ToolsetName, Promise<string>>()
let lastBuild: Promise<unknown> = Promise.resolve()

function toolsetDir(name: ToolsetName): string {
  return join(cacheRoot(), toolsetHash(TOOLSETS[name]))
}

/** The toolsets among `names` this checkout's pins have never built here. */
export function unbuiltToolsets(names: readonly ToolsetName[]): ToolsetName[] {
  return names.filter((name) => !complete(TOOLSETS[name], toolsetDir(name)))
}

/** The cached folder of each named toolset, building first whatever this checkout's pins have never built here. */
export async function ensureToolsets<N extends ToolsetName>(
  names: readonly N[],
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<Record<N, string>> {
  const dirs = await Promise.all(
    names.map((name) => {
      let dir = ready.get(name)
      if (dir === undefined) {
        if (unbuiltToolsets([name]).length === 0) dir = Promise.resolve(toolsetDir(name))
        else {
          // One build after the other, in the order asked: two Go builds at once on 2 cores take longer than in turn.
          dir = lastBuild.catch(() => undefined).then(() => ensureToolset(TOOLSETS[name], log))
          lastBuild = dir
        }
        ready.set(name, dir)
      }
      return dir
    }),
  )
  return Object.fromEntries(names.map((name, i) => [name, dirs[i]])) as Record<N, string>
}

/** The cached binaries, building first whatever this checkout's pins have never built here. */
export async function ensureClusterBinaries(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<ClusterBinaries> {
  const { cluster, helm } = await ensureToolsets(['cluster', 'helm'], log)
  return {
    kubeApiserver: join(cluster, 'kube-apiserver'),
    kubectl: join(cluster, 'kubectl'),
    etcd: join(cluster, 'etcd'),
    helm: join(helm, 'helm'),
  }
}

export interface NodeBinaries {
  kubelet: string
  containerd: string
  /** containerd-shim-runc-v2: containerd finds it on PATH, so its folder goes first on containerd's. */
  shim: string
  /** The static program every test image runs (test/cluster/containerd/pause). */
  pause: string
}

/** The node's binaries (runc aside: Debian's package), building first whatever was never built here. */
export async function ensureNodeBinaries(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<NodeBinaries> {
  const { kubelet, containerd } = await ensureToolsets(['kubelet', 'containerd'], log)
  return {
    kubelet: join(kubelet, 'kubelet'),
    containerd: join(containerd, 'containerd'),
    shim: join(containerd, 'containerd-shim-runc-v2'),
    pause: join(containerd, 'pause'),
  }
}
