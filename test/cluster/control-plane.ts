// A real Kubernetes control plane for the end-to-end tests: etcd and kube-apiserver v1.37.2 (built by
// binaries.ts) on free 127.0.0.1 ports, data in a temporary folder, and kubectl from the same
// release, driven as a user drives it. There is no kubelet, scheduler or controller manager: objects
// are stored and admitted, and nothing runs.
//
// Authentication: a static token file with one cluster-admin (`system:masters`) for the tests, and
// service-account tokens (TokenRequest, signed with a key made here) for pullguard itself, so what
// pullguard may read is decided by the manifests' own RBAC.
import { spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { createTestCA, type TestCA } from '../helpers/pki.js'
import { ensureClusterBinaries, type ClusterBinaries } from './binaries.js'
import { freePort } from '../helpers/fake-server.js'
import { removeOnExit, startChild, waitFor, type Child } from './processes.js'
import { startServiceProxy, type ServiceProxy } from './service-proxy.js'

/** kube-apiserver is ready about 3 s after start here; a loaded 2-core CI box may take several times that. */
const READY_TIMEOUT_MS = 90_000
/** One kubectl call takes well under a second; a minute means something hangs. */
const KUBECTL_TIMEOUT_MS = 60_000

export interface KubectlRun {
  code: number | null
  stdout: string
  stderr: string
  /** Wall time of the call, for the tests that bound how long kubectl waits. */
  ms: number
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string
  /** The CA that signed the API server's serving certificate (also usable to issue others). */
  ca: TestCA
  binaries: ClusterBinaries
  /** A kubeconfig for the cluster-admin token. */
  adminKubeconfig: string
  /** kubectl as the admin (or with `kubeconfig`), with optional stdin. */
  kubectl(
    args: readonly string[],
    options?: { input?: string; kubeconfig?: string; timeoutMs?: number },
  ): Promise<KubectlRun>
  /** Like kubectl, but fails with its stderr unless it exits 0. */
  kubectlOk(args: readonly string[], options?: { input?: string; kubeconfig?: string }): Promise<string>
  /** Writes a kubeconfig for this server that authenticates with `token`. */
  writeKubeconfig(name: string, token: string): Promise<string>
  /** GET on the API server as the admin (e.g. `/metrics`), the body as text. */
  getRaw(path: string): Promise<{ status: number; text: string }>
  apiserverLog(): string
  /** For CPU measurements (/proc); changes with restartApiserver. */
  readonly apiserverPid: number
  /** Stops kube-apiserver and starts it again on the same port and etcd (every watch breaks), then waits for /readyz. */
  restartApiserver(): Promise<void>
  /** With `serviceProxy`: sends Service `namespace/name` (its cluster IP and `port`) to 127.0.0.1:`to`. */
  routeService(namespace: string, name: string, port: number, to: number): Promise<void>
  /** With `serviceProxy`: every cluster address the API server dialled through it. */
  proxied(): readonly string[]
  close(): Promise<void>
}

/**
 * A namespace with its `default` service account, as the service-account controller (which does
 * not run here) would make it; the ServiceAccount admission plugin refuses pods without it.
 */
export async function createNamespace(cp: Pick<ControlPlane, 'kubectlOk'>, name: string): Promise<void> {
  await cp.kubectlOk(['create', 'namespace', name])
  await cp.kubectlOk(['create', 'serviceaccount', 'default', '-n', name])
}

export function kubeconfigYaml(server: string, caPem: string, token: string): string {
  // JSON is YAML: no quoting rules to get wrong.
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'e2e', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } },
    ],
    users: [{ name: 'e2e', user: { token } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'e2e', namespace: 'default' } }],
    'current-context': 'e2e',
  })
}

export interface ControlPlaneOptions {
  /**
   * kube-apiserver dials cluster traffic (webhooks' Service references) through an HTTP CONNECT
   * proxy on a unix socket (its egress selector, as with Konnectivity), which plays kube-proxy:
   * `routeService` sends a Service's cluster IP and port to a process on 127.0.0.1.
   */
  serviceProxy?: boolean
  /** More kube-apiserver flags (the bench's scale phase: a short --min-request-timeout, so watches end and resume). */
  apiserverArgs?: readonly string[]
}

/** Where the test command names its shared control planes (shared-control-plane.ts). */
export const SHARED_CONTROL_PLANES_ENV = 'PULLGUARD_SHARED_CONTROL_PLANES'

/**
 * A control plane for this test file. Under the test command's e2e tier, a file takes one of the
 * planes it shares, put back as it started (shared-control-plane.ts); with options that change the
 * API server (serviceProxy, apiserverArgs), or without the test command, it starts its own.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const shared = process.env[SHARED_CONTROL_PLANES_ENV]
  if (shared !== undefined && shared !== '' && options.serviceProxy !== true && options.apiserverArgs === undefined) {
    const { attachSharedControlPlane } = await import('./shared-control-plane.js')
    return attachSharedControlPlane(shared)
  }
  return startOwnControlPlane(options)
}

/** What the test command keeps of the planes it shares, beyond what a test file gets. */
export interface OwnControlPlane extends ControlPlane {
  etcdUrl: string
  adminToken: string
  /** Its data and keys (removed by close()); the CA's are in ca.dir. */
  dir: string
}

/** etcd and kube-apiserver of this process. `apiserverLogFile`: kube-apiserver's output is also appended there. */
export async function startOwnControlPlane(
  options: ControlPlaneOptions & { apiserverLogFile?: string } = {},
): Promise<OwnControlPlane> {
  const binaries = await ensureClusterBinaries()
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-cluster-'))
  const ca = await createTestCA('pullguard e2e cluster CA')
  const children: Child[] = []
  const agent = new Agent({ connect: { ca: ca.caPem } })
  let proxy: ServiceProxy | undefined
  const keepFolders = removeOnExit([dir, ca.dir])
  const cleanup = async (): Promise<void> => {
    for (const c of children.reverse()) await c.stop()
    await proxy?.close()
    await agent.close()
    await ca.close()
    await rm(dir, { recursive: true, force: true })
    keepFolders()
  }
  try {
    // etcd: its own data folder; fsync off, since a test cluster's data need not survive a crash.
    const [clientPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()]
    const etcdUrl = `http://127.0.0.1:${clientPort}`
    const peerUrl = `http://127.0.0.1:${peerPort}`
    const etcd = startChild('etcd', binaries.etcd, [
      '--name',
      'e2e',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      etcdUrl,
      '--advertise-client-urls',
      etcdUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `e2e=${peerUrl}`,
      '--log-level',
      'warn',
      '--unsafe-no-fsync',
    ])
    children.push(etcd)
    await waitFor(
      'etcd',
      async () => {
        const res = await request(`${etcdUrl}/health`)
        const body = (await res.body.json()) as { health?: string }
        return res.statusCode === 200 && body.health === 'true'
      },
      READY_TIMEOUT_MS,
      () => etcd.log(),
    )

    // Keys and the token file of kube-apiserver.
    await mkdir(join(dir, 'pki'))
    const serving = await ca.issue('kube-apiserver', {
      dns: ['localhost', 'kubernetes', 'kubernetes.default.svc'],
      ips: ['127.0.0.1'],
    })
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const saKey = join(dir, 'pki', 'sa.key')
    const saPub = join(dir, 'pki', 'sa.pub')
    await writeFile(saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    await writeFile(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }))
    const adminToken = randomBytes(24).toString('hex')
    const tokenFile = join(dir, 'pki', 'tokens.csv')
    await writeFile(tokenFile, `${adminToken},e2e-admin,e2e-admin,"system:masters"\n`, { mode: 0o600 })

    if (options.serviceProxy === true) proxy = await startServiceProxy(dir)
    const server = `https://127.0.0.1:${securePort}`
    const apiserverArgs = [
      '--etcd-servers',
      etcdUrl,
      '--cert-dir',
      join(dir, 'certs'),
      '--tls-cert-file',
      serving.certPath,
      '--tls-private-key-file',
      serving.keyPath,
      '--secure-port',
      String(securePort),
      '--bind-address',
      '127.0.0.1',
      '--advertise-address',
      '127.0.0.1',
      // With a loopback advertise address the endpoint reconciler refuses to start.
      '--endpoint-reconciler-type=none',
      // Only for allocating Service cluster IPs; nothing is ever sent there.
      '--service-cluster-ip-range',
      '10.96.0.0/16',
      '--service-account-issuer',
      'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file',
      saPub,
      '--service-account-signing-key-file',
      saKey,
      '--token-auth-file',
      tokenFile,
      '--authorization-mode',
      'RBAC',
      // The default admission plugins, ServiceAccount among them: it gives a Pod that lists no pull
      // secrets its account's, as in every real cluster. No controller runs, so whoever makes a
      // namespace that gets pods also makes its `default` account (createNamespace).
      ...(proxy === undefined ? [] : ['--egress-selector-config-file', proxy.configFile]),
      ...(options.apiserverArgs ?? []),
    ]
    const logOptions = options.apiserverLogFile === undefined ? {} : { logFile: options.apiserverLogFile }
    let apiserver = startChild('kube-apiserver', binaries.kubeApiserver, apiserverArgs, logOptions)
    children.push(apiserver)
    const adminKubeconfig = join(dir, 'admin.kubeconfig')
    await writeFile(adminKubeconfig, kubeconfigYaml(server, ca.caPem, adminToken), { mode: 0o600 })

    const client = adminClient({
      server,
      caPem: ca.caPem,
      adminToken,
      adminKubeconfig,
      kubectlBinary: binaries.kubectl,
      agent,
      dir,
    })
    const { getRaw, kubectl } = client
    await waitFor(
      'kube-apiserver /readyz',
      async () => (await getRaw('/readyz')).status === 200,
      READY_TIMEOUT_MS,
      () => apiserver.log(),
    )
    // RBAC's bootstrap roles are written by a post-start hook; wait until the admin can act.
    await waitFor(
      'RBAC bootstrap',
      async () => (await kubectl(['get', 'clusterrole', 'cluster-admin', '-o', 'name'])).code === 0,
      READY_TIMEOUT_MS,
      () => apiserver.log(),
    )
    return {
      server,
      etcdUrl,
      adminToken,
      dir,
      ca,
      binaries,
      adminKubeconfig,
      ...client,
      apiserverLog: () => apiserver.log(),
      get apiserverPid() {
        return apiserver.process.pid ?? NaN
      },
      async restartApiserver() {
        await apiserver.stop()
        const next = startChild('kube-apiserver', binaries.kubeApiserver, apiserverArgs, logOptions)
        children.splice(children.indexOf(apiserver), 1, next)
        apiserver = next
        await waitFor(
          'kube-apiserver /readyz after a restart',
          async () => (await getRaw('/readyz').catch(() => ({ status: 0 }))).status === 200,
          READY_TIMEOUT_MS,
          () => apiserver.log(),
        )
      },
      async routeService(namespace, name, port, to) {
        if (proxy === undefined) throw new Error('routeService needs startControlPlane({ serviceProxy: true })')
        const ip = (
          await kubectl(['get', 'service', name, '-n', namespace, '-o', 'jsonpath={.spec.clusterIP}'])
        ).stdout.trim()
        if (ip === '') throw new Error(`service ${namespace}/${name} has no cluster IP`)
        proxy.route(`${ip}:${port}`, to)
      },
      proxied: () => proxy?.requested() ?? [],
      close: cleanup,
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

type AdminClient = Pick<ControlPlane, 'kubectl' | 'kubectlOk' | 'writeKubeconfig' | 'getRaw'>

/** kubectl and raw requests as the cluster-admin; kubeconfigs written into `dir`. */
export function adminClient(c: {
  server: string
  caPem: string
  adminToken: string
  adminKubeconfig: string
  kubectlBinary: string
  agent: Agent
  dir: string
}): AdminClient {
  const kubectl = (
    args: readonly string[],
    options: { input?: string; kubeconfig?: string; timeoutMs?: number } = {},
  ): Promise<KubectlRun> =>
    runKubectl(c.kubectlBinary, args, { kubeconfig: options.kubeconfig ?? c.adminKubeconfig, ...options })
  return {
    kubectl,
    async kubectlOk(args, options = {}) {
      const run = await kubectl(args, options)
      if (run.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited with ${run.code}: ${run.stderr}`)
      return run.stdout
    },
    async writeKubeconfig(name, token) {
      const path = join(c.dir, `${name}.kubeconfig`)
      await writeFile(path, kubeconfigYaml(c.server, c.caPem, token), { mode: 0o600 })
      return path
    },
    async getRaw(path) {
      const res = await request(`${c.server}${path}`, {
        dispatcher: c.agent,
        headers: { authorization: `Bearer ${c.adminToken}` },
      })
      return { status: res.statusCode, text: await res.body.text() }
    },
  }
}

/**
 * kubectl (or a shell that runs it: `pathPrefix` puts this cluster's first on PATH) with only the
 * environment it needs: never the developer's own kubeconfig or cache.
 */
export function runKubectl(
  binary: string,
  args: readonly string[],
  options: { input?: string; kubeconfig: string; timeoutMs?: number; pathPrefix?: string },
): Promise<KubectlRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const path = process.env['PATH'] ?? ''
    const child = spawn(binary, [...args], {
      env: {
        PATH: options.pathPrefix === undefined ? path : `${options.pathPrefix}:${path}`,
        HOME: tmpdir(),
        KUBECONFIG: options.kubeconfig,
        KUBECACHEDIR: join(tmpdir(), 'pullguard-kubectl-cache'),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? KUBECTL_TIMEOUT_MS,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }))
    // A command that exits without reading its input closes the pipe first: EPIPE, not a test failure.
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}
