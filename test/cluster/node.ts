// A real node for the node tier: containerd v2.4.2 (with Debian's runc) and the kubelet v1.37.2,
// both built by binaries.ts, registered with a control plane of this suite. There is no scheduler,
// CNI or kube-proxy: pods name the node (`spec.nodeName`) and use the host's network, so the node
// stays NotReady, which does not matter for pods bound by name.
//
// A node changes the host (mounts, cgroups, sysctls, a few fixed paths), so:
// 1. One node per machine at a time, under a lock (a dead owner's lock is taken over).
// 2. Everything of the node lives under one fixed folder (NODE_ROOT): a crashed run's leftovers are
//    found and swept there before a new node starts.
// 3. Before the processes start, what they will change is written down (host.json: the sysctls'
//    values, which fixed host paths did not exist); stopping (or the sweep) puts all of it back:
//    stop the kubelet, kill what runs in the pods' cgroups, stop containerd and its shims, unmount
//    deepest first, remove the cgroups depth-first, the paths, and restore the sysctls.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { findRunc, RUNC_PACKAGE_HINT } from '../helpers/runc.js'
import { freePort } from '../helpers/fake-server.js'
import { ensureNodeBinaries, type NodeBinaries } from './binaries.js'
import type { ControlPlane } from './control-plane.js'
import { criPullImage, type CriAuth } from './cri.js'
import { alive, startChild, takeLock, waitFor, type Child } from './processes.js'

/** Fixed, so a later run finds a crashed one's leftovers; short, for the unix sockets under it. */
export const NODE_ROOT = join(tmpdir(), 'pullguard-node')
const LOCK = `${NODE_ROOT}.lock`
/** A node is up in about 1 s here; the lock is held for a whole test file. */
const LOCK_WAIT_MS = 15 * 60_000
const READY_TIMEOUT_MS = 60_000
const KILL_GRACE_MS = 5_000

/** The sysctls the kubelet sets at start (its kernel defaults), restored at the end. */
const NODE_SYSCTLS = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'] as const
/** Fixed paths outside NODE_ROOT that the kubelet and containerd create. */
const NODE_HOST_PATHS = [
  '/var/lib/kubelet',
  '/var/log/containers',
  '/var/log/pods',
  '/run/containerd',
  '/var/run/nri',
] as const
/** The pods' cgroups (cgroupfs driver, cgroup v1: one tree per hierarchy). */
const CGROUP_NAME = 'kubepods'
const CGROUP_BASE = '/sys/fs/cgroup'

interface HostState {
  sysctls: Record<string, string>
  /** Host paths that did not exist before the node: removed at the end. */
  absent: string[]
  /** cgroup hierarchies that had no kubepods before the node. */
  cgroupsAbsent: string[]
}

export interface NodeOptions {
  /** The node's name (its Node object). */
  name?: string
  /** The sandbox image (a pause image in a registry of the suite), pinned in containerd. */
  pauseImage: string
  /**
   * containerd's registry host configuration (`config_path`: one folder per registry host, with a
   * hosts.toml or a `ca.crt`), the same folder pullguard reads with --containerd-hosts-dir.
   */
  hostsDir: string
  /** The node's own docker config (the kubelet's `config.json` in its root folder). */
  dockerConfig?: string
  /** The kubelet's credential provider plugins (--image-credential-provider-config / -bin-dir). */
  credentialProviders?: { config: string; binDir: string }
  /** The kubelet's check of images already on the node; unset: its default (NeverVerifyPreloadedImages). */
  imageVerification?: ImageVerification
  /**
   * Images on the node before the kubelet starts, pulled through the CRI as `crictl pull` does: the
   * kubelet has no pull record of them (they are "preloaded"), and its first image list has them.
   */
  preload?: ReadonlyArray<{ image: string; auth?: CriAuth }>
}

/**
 * The kubelet's imagePullCredentialsVerificationPolicy and preloadedImagesVerificationAllowlist
 * (KubeletConfiguration v1beta1, KEP-2535): whether a pod gets an image already on the node
 * without its credentials being checked against the record of the pull that put it there.
 */
export interface ImageVerification {
  policy: 'NeverVerify' | 'NeverVerifyPreloadedImages' | 'NeverVerifyAllowlistedImages' | 'AlwaysVerify'
  /** Only with NeverVerifyAllowlistedImages: the kubelet refuses to start with it under another policy. */
  allowlist?: readonly string[]
}

/** A kubelet record of an image it pulled (`<root-dir>/image_manager/pulled/`, pullmanager fs_pullrecords.go). */
export interface PulledRecord {
  /** The CRI image ID (the config digest), which the record is for. */
  imageRef: string
  /** By image name without tag: how the pull was made (nodePodsAccessible, or the secrets / service accounts used). */
  credentialMapping: Record<
    string,
    {
      nodePodsAccessible?: boolean
      kubernetesSecrets?: Array<{ uid: string; namespace: string; name: string; credentialHash: string }>
      kubernetesServiceAccounts?: Array<{ uid: string; namespace: string; name: string }>
    }
  >
}

export interface Node {
  name: string
  binaries: NodeBinaries
  /** NodeOptions.preload's images → their image IDs. */
  preloaded: ReadonlyMap<string, string>
  containerdLog(): string
  kubeletLog(): string
  /**
   * Stops the kubelet and starts it again with another image verification (its configuration is
   * read only at start); containers, images and its pull records stay. A new kubelet also lists the
   * node's images at once (otherwise every 30 s: kubelet images/image_gc_manager.go Start), so
   * status.images soon names every image on the node.
   */
  restartKubelet(imageVerification: ImageVerification | undefined): Promise<void>
  /** The kubelet's records of the images it pulled. */
  pulledRecords(): PulledRecord[]
  /** Stops the node and puts the host back as it was (idempotent). */
  stop(): Promise<void>
  /**
   * What a crashed test run leaves: the kubelet and containerd killed, the lock released, and the
   * host left as it is (shims, containers, mounts, cgroups), for the next node's sweep to find.
   */
  crash(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// The host, before and after

function readSysctl(name: string): string {
  return readFileSync(`/proc/sys/${name}`, 'utf8').trim()
}

function cgroupHierarchies(): string[] {
  // cgroup v1: one folder per mounted hierarchy (cpu, memory, pids, …, name=systemd as systemd).
  return readdirSync(CGROUP_BASE, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(CGROUP_BASE, e.name, 'cgroup.procs')))
    .map((e) => join(CGROUP_BASE, e.name))
}

/** What a node changes on the host, as it is now: compared before and after in the node tier. */
export interface HostSnapshot {
  sysctls: Record<string, string>
  paths: string[]
  cgroups: string[]
  mounts: string[]
  processes: string[]
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => unescapeMount(line.split(' ')[4] ?? ''))
}

function unescapeMount(path: string): string {
  return path.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
}

/** Processes whose command line names NODE_ROOT (containerd, the kubelet, shims), as `pid cmdline`. */
function nodeProcesses(): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    let cmdline = ''
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()
    } catch {
      continue // gone
    }
    if (cmdline.includes(NODE_ROOT)) found.push({ pid: Number(entry), cmdline })
  }
  return found
}

export function hostSnapshot(): HostSnapshot {
  return {
    sysctls: sysctls(),
    paths: NODE_HOST_PATHS.filter((p) => existsSync(p)),
    cgroups: cgroupHierarchies().filter((h) => existsSync(join(h, CGROUP_NAME))),
    mounts: mountPoints().filter((m) => m.startsWith(NODE_ROOT) || m.startsWith('/run/containerd')),
    processes: nodeProcesses().map((p) => p.cmdline),
  }
}

function sysctls(): Record<string, string> {
  return Object.fromEntries(NODE_SYSCTLS.map((s) => [s, readSysctl(s)]))
}

function recordHost(): HostState {
  return {
    sysctls: sysctls(),
    absent: NODE_HOST_PATHS.filter((p) => !existsSync(p)),
    cgroupsAbsent: cgroupHierarchies().filter((h) => !existsSync(join(h, CGROUP_NAME))),
  }
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

async function waitGone(pids: readonly number[], ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
}

/** Every cgroup under `dir`, deepest first. */
function cgroupTree(dir: string): string[] {
  if (!existsSync(dir)) return []
  const below = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => cgroupTree(join(dir, e.name)))
  return [...below, dir]
}

function cgroupProcs(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * Puts the host back as `state` found it and removes NODE_ROOT: the containers (every process in
 * the pods' cgroups), the node's own processes, mounts, cgroups, paths and sysctls. Used by stop()
 * and by the sweep of a crashed run; each step goes on when an earlier one fails, and the first
 * failure is thrown at the end.
 */
async function restoreHost(state: HostState | undefined): Promise<void> {
  const problems: string[] = []
  const attempt = (what: string, step: () => void): void => {
    try {
      step()
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`)
    }
  }
  // Only the cgroups this node made: with no record, it died before changing anything outside NODE_ROOT
  // (and a kubepods tree that was there before it belongs to someone else).
  const ours = state?.cgroupsAbsent ?? []
  // 1. The containers, then the node's processes (whatever stop() has not stopped already).
  const pods = ours.flatMap((h) => cgroupTree(join(h, CGROUP_NAME)).flatMap(cgroupProcs))
  killAll(pods)
  const own = nodeProcesses().map((p) => p.pid)
  killAll(own)
  await waitGone([...pods, ...own], KILL_GRACE_MS)
  // 2. Mounts under the node's folders, deepest first (a pod's volumes sit inside its folder).
  const mounts = mountPoints()
    .filter((m) => m.startsWith(`${NODE_ROOT}/`) || m.startsWith('/run/containerd/'))
    .sort((a, b) => b.length - a.length)
  for (const m of mounts) {
    attempt(`umount ${m}`, () => {
      const run = spawnSync('umount', [m], { encoding: 'utf8' })
      if (run.status !== 0) {
        // Busy (a process still in it): detach now; the kernel finishes when it lets go.
        const lazy = spawnSync('umount', ['-l', m], { encoding: 'utf8' })
        if (lazy.status !== 0) throw new Error(lazy.stderr.trim() || run.stderr.trim())
      }
    })
  }
  // 3. The pods' cgroups, depth-first (a cgroup can be removed only once empty of processes and children).
  for (const hierarchy of ours) {
    for (const dir of cgroupTree(join(hierarchy, CGROUP_NAME))) attempt(`rmdir ${dir}`, () => rmdirSync(dir))
  }
  // 4. Paths, then the node's own folder, then the sysctls.
  for (const path of state?.absent ?? []) attempt(`rm ${path}`, () => rmSync(path, { recursive: true, force: true }))
  attempt(`rm ${NODE_ROOT}`, () => rmSync(NODE_ROOT, { recursive: true, force: true }))
  for (const [name, value] of Object.entries(state?.sysctls ?? {})) {
    attempt(`sysctl ${name}`, () => {
      if (readSysctl(name) !== value) writeFileSync(`/proc/sys/${name}`, value)
    })
  }
  if (problems.length > 0) throw new Error(`restoring the host after the node:\n${problems.join('\n')}`)
}

/** A crashed run's node, if any: its processes stopped and the host put back as its host.json says. */
async function sweep(): Promise<void> {
  if (!existsSync(NODE_ROOT)) return
  let state: HostState | undefined
  try {
    state = JSON.parse(readFileSync(join(NODE_ROOT, 'host.json'), 'utf8')) as HostState
  } catch {
    // It died before writing it: nothing outside NODE_ROOT was changed yet.
  }
  process.stderr.write(`node: sweeping the leftovers of an earlier run in ${NODE_ROOT}\n`)
  await restoreHost(state)
}

// ---------------------------------------------------------------------------------------------
// The lock

async function lock(): Promise<() => void> {
  const release = await takeLock(LOCK, LOCK_WAIT_MS, () => new Error(`waited ${LOCK_WAIT_MS / 60_000} min for ${LOCK}`))
  process.once('exit', release)
  return () => {
    process.off('exit', release)
    release()
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration

function containerdConfig(o: { pauseImage: string; hostsDir: string; runc: string }): string {
  const q = JSON.stringify
  const root = NODE_ROOT
  // TOML basic strings and JSON strings escape alike for these paths.
  return `version = 3
root = ${q(join(root, 'containerd', 'root'))}
state = ${q(join(root, 'containerd', 'state'))}
# Plugins that would create host paths (/opt/containerd, /var/run/nri) or export traces.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${q(join(root, 'containerd.sock'))}

[ttrpc]
  address = ${q(join(root, 'containerd.sock.ttrpc'))}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${q(o.pauseImage)}
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = ${q(o.hostsDir)}

[plugins.'io.containerd.cri.v1.runtime']
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower a container's oom_score_adj below its own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${q(join(root, 'cni', 'bin'))}]
    conf_dir = ${q(join(root, 'cni', 'net.d'))}
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = ${q(o.runc)}
        Root = ${q(join(root, 'runc'))}
        SystemdCgroup = false
`
}

function kubeletConfig(o: {
  port: number
  healthzPort: number
  imageVerification: ImageVerification | undefined
}): string {
  const verification = o.imageVerification
  return JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // These machines mount cgroup v1 and have swap settings of their own.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    // Root here cannot lower its own oom_score_adj (no CAP_SYS_RESOURCE).
    oomScoreAdj: 0,
    containerRuntimeEndpoint: `unix://${join(NODE_ROOT, 'containerd.sock')}`,
    address: '127.0.0.1',
    port: o.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: o.healthzPort,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    // A test machine's disk and memory are whatever they are: evict nothing, collect no images.
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    resolvConf: '',
    localStorageCapacityIsolation: false,
    podLogsDir: join(NODE_ROOT, 'pod-logs'),
    // Status soon after a change: the tests wait on it.
    nodeStatusUpdateFrequency: '2s',
    syncFrequency: '5s',
    ...(verification === undefined ? {} : { imagePullCredentialsVerificationPolicy: verification.policy }),
    ...(verification?.allowlist === undefined ? {} : { preloadedImagesVerificationAllowlist: verification.allowlist }),
  })
}

// ---------------------------------------------------------------------------------------------
// The node

export async function startNode(cp: ControlPlane, options: NodeOptions): Promise<Node> {
  const runc = findRunc()
  if (runc === null) throw new Error(`runc not found: ${RUNC_PACKAGE_HINT}`)
  if (process.getuid?.() !== 0) throw new Error('a node needs root: it mounts, makes cgroups and sets sysctls')
  const binaries = await ensureNodeBinaries()
  const name = options.name ?? 'pullguard-node'
  const unlock = await lock()
  const children: Child[] = []
  let state: HostState | undefined
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        // The kubelet first (it would restart what dies), then containerd; restoreHost kills what is left.
        for (const c of children.reverse()) await c.stop()
        await restoreHost(state)
      } finally {
        unlock()
      }
    })())
  try {
    await sweep()
    state = recordHost()
    // Someone else's kubelet (a real node): its pods' cgroups and paths are not ours to change or remove.
    const foreign = cgroupHierarchies().filter((h) => !state?.cgroupsAbsent.includes(h))
    if (foreign.length > 0 || !state.absent.includes('/var/lib/kubelet'))
      throw new Error(
        `this machine already has a kubelet's state (${[...foreign.map((h) => join(h, CGROUP_NAME)), ...NODE_HOST_PATHS.filter((p) => !state?.absent.includes(p))].join(', ')}): the node tests need a machine without one`,
      )
    mkdirSync(NODE_ROOT, { recursive: true })
    writeFileSync(join(NODE_ROOT, 'host.json'), JSON.stringify(state))
    const kubeletRoot = join(NODE_ROOT, 'kubelet')
    mkdirSync(kubeletRoot, { recursive: true })
    if (options.dockerConfig !== undefined) writeFileSync(join(kubeletRoot, 'config.json'), options.dockerConfig)

    const containerdToml = join(NODE_ROOT, 'containerd.toml')
    writeFileSync(
      containerdToml,
      containerdConfig({ pauseImage: options.pauseImage, hostsDir: options.hostsDir, runc }),
    )
    const containerd = startChild('containerd', binaries.containerd, ['--config', containerdToml], {
      // The shim is found on PATH, runc by its configured path.
      env: { PATH: `${dirname(binaries.shim)}:/usr/sbin:/usr/bin:/sbin:/bin`, TMPDIR: NODE_ROOT },
    })
    children.push(containerd)
    await waitFor(
      'containerd socket',
      async () => existsSync(join(NODE_ROOT, 'containerd.sock')),
      READY_TIMEOUT_MS,
      () => containerd.log(),
    )

    const preloaded = new Map<string, string>()
    for (const { image, auth } of options.preload ?? [])
      preloaded.set(image, await criPullImage(join(NODE_ROOT, 'containerd.sock'), image, auth))

    const kubeletYaml = join(NODE_ROOT, 'kubelet.yaml')
    const ports = { port: await freePort(), healthzPort: await freePort() }
    const args = [
      '--config',
      kubeletYaml,
      '--kubeconfig',
      cp.adminKubeconfig,
      '--hostname-override',
      name,
      '--node-ip',
      '127.0.0.1',
      '--root-dir',
      kubeletRoot,
      '--cert-dir',
      join(NODE_ROOT, 'kubelet-pki'),
      ...(options.credentialProviders === undefined
        ? []
        : [
            '--image-credential-provider-config',
            options.credentialProviders.config,
            '--image-credential-provider-bin-dir',
            options.credentialProviders.binDir,
          ]),
    ]
    const startKubelet = (imageVerification: ImageVerification | undefined): Child => {
      writeFileSync(kubeletYaml, kubeletConfig({ ...ports, imageVerification }))
      const child = startChild('kubelet', binaries.kubelet, args, {
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: kubeletRoot },
      })
      children.push(child)
      return child
    }
    const kubeletTrouble = (): string => `${kubelet.log().slice(-6000)}\ncontainerd:\n${containerd.log().slice(-3000)}`
    let kubelet = startKubelet(options.imageVerification)
    await waitFor(
      `node ${name} registered`,
      async () => (await cp.kubectl(['get', 'node', name, '-o', 'name'])).code === 0,
      READY_TIMEOUT_MS,
      kubeletTrouble,
    )
    return {
      name,
      binaries,
      preloaded,
      containerdLog: () => containerd.log(),
      kubeletLog: () => kubelet.log(),
      async restartKubelet(imageVerification) {
        await kubelet.stop()
        children.splice(children.indexOf(kubelet), 1)
        kubelet = startKubelet(imageVerification)
        // The Node is registered already: the new kubelet is up once its health endpoint answers.
        await waitFor(
          `kubelet of ${name} restarted`,
          async () => (await fetch(`http://127.0.0.1:${ports.healthzPort}/healthz`)).ok,
          READY_TIMEOUT_MS,
          kubeletTrouble,
        )
      },
      pulledRecords: () => pulledRecords(join(kubeletRoot, 'image_manager', 'pulled')),
      stop,
      async crash() {
        stopping ??= (async () => {
          for (const c of children) c.process.kill('SIGKILL')
          await Promise.all(children.map((c) => c.exited))
          unlock()
        })()
        await stopping
      },
    }
  } catch (err) {
    await stop().catch(() => undefined)
    throw err
  }
}

/** Every record in the kubelet's `pulled` folder (one JSON file per image ID; `.tmp` files are writes under way). */
function pulledRecords(dir: string): PulledRecord[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => !f.endsWith('.tmp'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as PulledRecord)
}
