// One end-to-end world per test file: a real control plane with pullguard installed from
// manifests/base and running as its own service account, and two real registries (distribution):
// `open` (anonymous pulls) and `private` (htpasswd: the user `puller` may read everything).
// Tests then act only through kubectl, as users do.
import { mkdtemp, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { createTestCA, type TestCA } from '../helpers/pki.js'
import { startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { createNamespace, runKubectl, startControlPlane, type ControlPlane, type KubectlRun } from './control-plane.js'
import {
  installPullguard,
  podManifest,
  startPullguard,
  waitForWebhook,
  WEBHOOK_NAME,
  type Installed,
  type PullguardProcess,
} from './pullguard.js'

export { podManifest, WEBHOOK_NAME }
export const PULLER: PushAuth = { username: 'puller', password: 'Puller-Pass-1' }

export interface World {
  cp: ControlPlane
  registryCa: TestCA
  open: RunningRegistry
  private: RunningRegistry
  installed: Installed
  readonly pullguard: PullguardProcess
  /** Restarts pullguard (e.g. with other flags) on the port the webhook names. */
  restartPullguard(args?: readonly string[]): Promise<PullguardProcess>
  /** Creates a namespace, with labels. */
  namespace(name: string, labels?: Record<string, string>): Promise<void>
  /** `kubectl <verb> -f -` of one object or a List. */
  apply(object: unknown, verb?: 'apply' | 'create', extra?: readonly string[]): Promise<KubectlRun>
  /** Sum of the API server's apiserver_admission_webhook_request_total for pullguard, by operation. */
  webhookCalls(operation: 'CREATE' | 'UPDATE'): Promise<number>
  /** A command line as a user pastes it into a shell: `kubectl` is this cluster's, as the admin. */
  sh(command: string): Promise<KubectlRun>
}

export interface WorldOptions {
  /** Extra `pullguard serve` flags. */
  args?: readonly string[]
  /** Images to push: `open:team/api:1.0`, `private:shop/api:2.4.1`. */
  images?: readonly string[]
  /** Both registries keep their access logs (RunningRegistry.requests). */
  accessLog?: boolean
}

export async function startWorld(t: Test, options: WorldOptions = {}): Promise<World> {
  const registryCa = await createTestCA('pullguard e2e registry CA')
  t.teardown(() => registryCa.close())
  const open = await startRegistry({ ca: registryCa, auth: { kind: 'none' }, accessLog: options.accessLog === true })
  t.teardown(() => open.close())
  const priv = await startRegistry({
    ca: registryCa,
    auth: { kind: 'htpasswd', users: { [PULLER.username]: PULLER.password } },
    accessLog: options.accessLog === true,
  })
  t.teardown(() => priv.close())
  for (const spec of options.images ?? []) {
    const [which, rest] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)]
    const colon = rest.lastIndexOf(':')
    const reg = which === 'open' ? open : priv
    await seedOciManifest(reg, rest.slice(0, colon), rest.slice(colon + 1), which === 'open' ? undefined : PULLER)
  }
  const cp = await startControlPlane()
  t.teardown(() => cp.close())
  const installed = await installPullguard(cp)
  const baseArgs = ['--registry-ca', registryCa.caPath, '--log-level', 'info']
  let pullguard = await startPullguard(cp, { ...installed, args: [...baseArgs, ...(options.args ?? [])] })
  t.teardown(() => pullguard.stop())
  await createNamespace(cp, 'e2e-probe')
  await waitForWebhook(cp, 'e2e-probe')

  const apply = (
    object: unknown,
    verb: 'apply' | 'create' = 'apply',
    extra: readonly string[] = [],
  ): Promise<KubectlRun> => cp.kubectl([verb, ...extra, '-f', '-'], { input: JSON.stringify(object) })
  return {
    cp,
    registryCa,
    open,
    private: priv,
    installed,
    get pullguard() {
      return pullguard
    },
    async restartPullguard(args = []) {
      await pullguard.stop()
      pullguard = await startPullguard(cp, { ...installed, args: [...baseArgs, ...args] })
      return pullguard
    },
    async namespace(name, labels = {}) {
      await createNamespace(cp, name)
      const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`)
      if (pairs.length > 0) await cp.kubectlOk(['label', 'namespace', name, ...pairs])
    },
    apply,
    sh: (command) => runShell(cp, command),
    async webhookCalls(operation) {
      const { text } = await cp.getRaw('/metrics')
      let total = 0
      for (const line of text.split('\n')) {
        if (!line.startsWith('apiserver_admission_webhook_request_total{')) continue
        if (!line.includes(`name="${WEBHOOK_NAME}"`) || !line.includes(`operation="${operation}"`)) continue
        total += Number(line.slice(line.lastIndexOf(' ') + 1))
      }
      return total
    },
  }
}

/** A folder holding only `kubectl` (this cluster's), put first on PATH for pasted commands. */
let kubectlDir: string | undefined

async function runShell(cp: ControlPlane, command: string): Promise<KubectlRun> {
  if (kubectlDir === undefined) {
    kubectlDir = await mkdtemp(join(tmpdir(), 'pullguard-kubectl-'))
    await symlink(cp.binaries.kubectl, join(kubectlDir, 'kubectl'))
  }
  return runKubectl('/bin/sh', ['-c', command], { kubeconfig: cp.adminKubeconfig, pathPrefix: kubectlDir })
}

/**
 * The commands of a fix as kubectl printed them: each line's text after the first `: kubectl `
 * (a command always ends its line), with only USER and PASSWORD filled in.
 */
export function printedCommands(text: string, auth: PushAuth = PULLER): string[] {
  return text.split('\n').flatMap((line) => {
    const at = line.indexOf(': kubectl ')
    if (at < 0) return []
    return [
      line
        .slice(at + 2)
        .replace('--docker-username=USER', `--docker-username=${auth.username}`)
        .replace('--docker-password=PASSWORD', `--docker-password=${auth.password}`),
    ]
  })
}

/** A Deployment of one pod template, as `kubectl apply -f` takes it. */
export function deploymentManifest(
  namespace: string,
  name: string,
  images: readonly string[],
  podSpec: Record<string, unknown> = {},
): Record<string, unknown> {
  const labels = { app: name }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })), ...podSpec },
      },
    },
  }
}

export function cronJobManifest(namespace: string, name: string, images: readonly string[]): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace },
    spec: {
      schedule: '*/5 * * * *',
      jobTemplate: {
        spec: {
          template: {
            spec: { restartPolicy: 'OnFailure', containers: images.map((image, i) => ({ name: `c${i}`, image })) },
          },
        },
      },
    },
  }
}
