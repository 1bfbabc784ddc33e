// pullguard installed into a real control plane as a user installs it, and run beside it:
// 1. `kubectl kustomize manifests/base` (or an overlay) renders the manifests; only the webhooks'
//    clientConfig is changed (a `url` on 127.0.0.1 and the test CA as `caBundle`, since no Service
//    can route here); everything is applied with `kubectl apply`.
// 2. A token of the manifests' own service account (TokenRequest, `kubectl create token`) goes into
//    pullguard's kubeconfig, so every read pullguard makes is allowed by the manifests' RBAC or not at all.
// 3. `node dist/src/cli.js serve` runs as a process on the port the webhook names, with the CLI's
//    own flags; ready when /readyz answers 200.
import { load } from 'js-yaml'
import { readFile } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import type { ControlPlane } from './control-plane.js'
import { freePort } from '../helpers/fake-server.js'
import { podFiles, type PodFiles } from './pod-files.js'
import { startChild, waitFor, type Child } from './processes.js'

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url))
/** pullguard is listening within a second or two; its first API list follows. */
const READY_TIMEOUT_MS = 30_000
export const WEBHOOK_NAME = 'pullguard.pullguard.io'
/** pullguard batches its log lines and writes them at least every 200 ms (src/log/logger.ts). */
const LOG_SETTLE_MS = 500

interface Rendered {
  kind: string
  metadata: { name: string }
  webhooks?: Array<{ name: string; clientConfig: unknown; [k: string]: unknown }>
}

/** The objects `kubectl apply -k DIR` would send (DIR absolute, or relative to the repository), as kubectl renders them. */
export async function renderBase(cp: ControlPlane, dir = 'manifests/base'): Promise<Rendered[]> {
  const yaml = await cp.kubectlOk(['kustomize', isAbsolute(dir) ? dir : `${REPO_ROOT}${dir}`])
  return yaml
    .split(/^---$/m)
    .map((doc) => load(doc) as Rendered)
    .filter((o) => o !== null && o !== undefined)
}

export interface Installed {
  /** The port the webhook's url names (pullguard is started on it). */
  port: number
  /** A kubeconfig holding a token of serviceaccount pullguard/pullguard. */
  kubeconfig: string
}

/**
 * Applies the rendered base (or the kustomization `dir`: an overlay, or a team's own on one) with
 * the webhook pointed at https://127.0.0.1:PORT/validate.
 */
export async function installPullguard(
  cp: ControlPlane,
  options: { port?: number; dir?: string } = {},
): Promise<Installed> {
  const port = options.port ?? (await freePort())
  const objects = await renderBase(cp, options.dir)
  const vwc = objects.find((o) => o.kind === 'ValidatingWebhookConfiguration')
  const hook = vwc?.webhooks?.[0]
  if (hook === undefined)
    throw new Error(`${options.dir ?? 'manifests/base'} renders no ValidatingWebhookConfiguration webhook`)
  hook.clientConfig = {
    url: `https://127.0.0.1:${port}/validate`,
    caBundle: Buffer.from(cp.ca.caPem).toString('base64'),
  }
  // The pin-digests overlay's mutating webhook calls the same pullguard.
  for (const mutating of objects.filter((o) => o.kind === 'MutatingWebhookConfiguration')) {
    for (const h of mutating.webhooks ?? [])
      h.clientConfig = {
        url: `https://127.0.0.1:${port}/mutate`,
        caBundle: Buffer.from(cp.ca.caPem).toString('base64'),
      }
  }
  await cp.kubectlOk(['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  })
  // The service-account controller's part (none runs here): pods in pullguard's namespace that name no account.
  await cp.kubectlOk(['create', 'serviceaccount', 'default', '-n', 'pullguard'])
  const token = (await cp.kubectlOk(['create', 'token', 'pullguard', '-n', 'pullguard', '--duration', '2h'])).trim()
  return { port, kubeconfig: await cp.writeKubeconfig('pullguard', token) }
}

export interface PullguardProcess {
  origin: string
  child: Child
  /** Every JSON log line so far. */
  logs(): Array<Record<string, unknown>>
  /** The same, once pullguard's log batch has been written (it writes at least every 200 ms). */
  settledLogs(): Promise<Array<Record<string, unknown>>>
  /** /metrics text. */
  metrics(): Promise<string>
  stop(): Promise<void>
}

/**
 * `kubeconfig` undefined: no KUBECONFIG at all (and an empty HOME). `until`: which endpoint must
 * answer 200 first (readyz needs the API; healthz only the server).
 */
export async function startPullguard(
  cp: ControlPlane,
  options: {
    port: number
    kubeconfig: string | undefined
    args?: readonly string[]
    env?: Record<string, string>
    until?: 'readyz' | 'healthz'
    discardOutput?: boolean
    nodeArgs?: readonly string[]
    tls?: { certPath: string; keyPath: string; caPem: string; serverName: string }
    wrap?: (command: string, args: readonly string[]) => { command: string; args: string[] }
  },
): Promise<PullguardProcess> {
  // Without `tls`, a certificate of the test CA for 127.0.0.1 (the webhook's url).
  const cert = options.tls ?? (await cp.ca.issue('pullguard webhook', { dns: ['localhost'], ips: ['127.0.0.1'] }))
  const args = [
    ...(options.nodeArgs ?? []),
    CLI,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--tls-cert',
    cert.certPath,
    '--tls-key',
    cert.keyPath,
    ...(options.args ?? []),
  ]
  // `wrap`: started through something else (the bench: inside a memory cgroup), keeping the pid.
  const launch = options.wrap?.(process.execPath, args) ?? { command: process.execPath, args }
  const child = startChild('pullguard', launch.command, launch.args, {
    env: {
      PATH: process.env['PATH'] ?? '',
      ...(options.kubeconfig === undefined ? {} : { KUBECONFIG: options.kubeconfig }),
      POD_NAMESPACE: 'pullguard',
      ...options.env,
    },
    discard: options.discardOutput === true,
  })
  const lines: Array<Record<string, unknown>> = []
  child.onLine((line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      // not a log line
    }
  })
  const origin = `https://127.0.0.1:${options.port}`
  let stopped: Promise<void> | undefined
  const agent = new Agent({
    connect:
      options.tls === undefined ? { ca: cp.ca.caPem } : { ca: options.tls.caPem, servername: options.tls.serverName },
  })
  const get = async (path: string): Promise<{ status: number; text: string }> => {
    const res = await request(`${origin}${path}`, { dispatcher: agent })
    return { status: res.statusCode, text: await res.body.text() }
  }
  const until = options.until ?? 'readyz'
  await waitFor(
    `pullguard /${until}`,
    async () => (await get(`/${until}`)).status === 200,
    READY_TIMEOUT_MS,
    () => child.log(),
  )
  return {
    origin,
    child,
    logs: () => lines,
    settledLogs: async () => {
      await new Promise((r) => setTimeout(r, LOG_SETTLE_MS))
      return lines
    },
    metrics: async () => (await get('/metrics')).text,
    // Idempotent: tests stop pullguard on purpose, and teardown stops it again.
    stop() {
      stopped ??= child.stop().then(() => agent.close())
      return stopped
    },
  }
}

/**
 * pullguard as the pod of Deployment `namespace/pullguard` would run it: the args, env and mounted
 * Secrets and ConfigMaps the Deployment gives it (pod-files.ts), its serving certificate from the
 * Secret mounted at /etc/pullguard/tls, and `args` after the pod's own (the test's environment,
 * e.g. the test registries' CA). Listens on 127.0.0.1:`port`, the webhook's or the Service's.
 */
export async function startPullguardAsPod(
  cp: ControlPlane,
  options: { namespace: string; port: number; kubeconfig: string; args?: readonly string[] },
): Promise<{ pod: PodFiles; pullguard: PullguardProcess }> {
  const { namespace } = options
  const pod = await podFiles(cp, namespace, 'pullguard', 'pullguard-5d8f7c9b4-x2x7q')
  try {
    const tlsDir = pod.local('/etc/pullguard/tls')
    const pullguard = await startPullguard(cp, {
      port: options.port,
      kubeconfig: options.kubeconfig,
      args: [...pod.args.filter((a) => !/^--(port|tls-cert|tls-key)=/.test(a)), ...(options.args ?? [])],
      env: pod.env,
      tls: {
        certPath: join(tlsDir, 'tls.crt'),
        keyPath: join(tlsDir, 'tls.key'),
        caPem: await readFile(join(tlsDir, 'ca.crt'), 'utf8'),
        serverName: `pullguard.${namespace}.svc`,
      },
    })
    return { pod, pullguard }
  } catch (err) {
    await pod.close()
    throw err
  }
}

/**
 * Waits until the API server sends reviews to pullguard: it reads webhook configurations through an
 * informer, so a new one takes effect a moment after it is stored. An invalid reference is refused
 * by pullguard without any registry request.
 */
export async function waitForWebhook(cp: ControlPlane, namespace: string): Promise<void> {
  await waitFor(
    'webhook in effect',
    async () => {
      const run = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], {
        input: JSON.stringify(podManifest(namespace, 'webhook-probe', ['Invalid/UPPER:case'])),
      })
      return run.code !== 0 && run.stderr.includes(WEBHOOK_NAME)
    },
    READY_TIMEOUT_MS,
    () => cp.apiserverLog().slice(-4000),
  )
}

/** A bare Pod with one container per image (`c0`, `c1`, …), as `kubectl create -f` takes it. */
export function podManifest(
  namespace: string,
  name: string,
  images: readonly string[],
  spec: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })), restartPolicy: 'Never', ...spec },
  }
}

/**
 * What certs/make-certs.sh (or cert-manager) makes beside the manifests: the Secret pullguard-tls
 * the Deployment mounts, here with a certificate of the control plane's CA for the webhook's 127.0.0.1.
 */
export async function createServingSecret(cp: ControlPlane): Promise<void> {
  const serving = await cp.ca.issue('pullguard webhook', { dns: ['pullguard.pullguard.svc'], ips: ['127.0.0.1'] })
  await cp.kubectlOk([
    'create',
    'secret',
    'generic',
    'pullguard-tls',
    '-n',
    'pullguard',
    `--from-file=tls.crt=${serving.certPath}`,
    `--from-file=tls.key=${serving.keyPath}`,
    `--from-file=ca.crt=${cp.ca.caPath}`,
  ])
}
