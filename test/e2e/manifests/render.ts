/**
 * The manifests as a cluster would receive them, without a cluster:
 * 1. `kubectl kustomize DIR` builds the kustomization exactly as `kubectl apply -k DIR` does, and
 *    `helm template` renders the chart as `helm install` would (without lookups);
 * 2. kubectl's own decoder (YAML 1.1, as `kubectl apply` reads it) turns that YAML into JSON:
 *    `kubectl patch --local` with an empty merge patch changes nothing and contacts no server.
 *    The objects stay raw, so a misspelt field is still there for the tests to find.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureClusterBinaries } from '../../cluster/binaries.js'
import { runHelm, type HelmRun } from '../../cluster/helm.js'

/** From dist/test/e2e/manifests/ (where this runs) up to the repository. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
}

export class KubectlError extends Error {
  constructor(
    readonly code: 'KubectlMissing' | 'KubectlFailed',
    message: string,
  ) {
    super(message)
    this.name = 'KubectlError'
  }
}

/** kustomize of a local directory takes well under a second; a minute means something hangs. */
const KUBECTL_TIMEOUT_MS = 60_000
/** The rendered manifests are a few tens of KiB. */
const KUBECTL_MAX_OUTPUT_BYTES = 16 * 1024 * 1024

/** The kubectl of the test cluster's release (test/cluster), never whatever a machine has on PATH. */
const KUBECTL = (await ensureClusterBinaries()).kubectl

function kubectl(args: readonly string[], input?: string): string {
  const run = spawnSync(KUBECTL, args, {
    cwd: REPO_ROOT,
    input,
    encoding: 'utf8',
    timeout: KUBECTL_TIMEOUT_MS,
    maxBuffer: KUBECTL_MAX_OUTPUT_BYTES,
  })
  if (run.error !== undefined) {
    if ((run.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KubectlError(
        'KubectlMissing',
        `${KUBECTL} is missing: remove its folder and run the tests again to rebuild it`,
      )
    }
    throw new KubectlError('KubectlFailed', `kubectl ${args.join(' ')}: ${run.error.message}`)
  }
  if (run.status !== 0)
    throw new KubectlError(
      'KubectlFailed',
      `kubectl ${args.join(' ')} exited with ${run.status ?? run.signal}: ${run.stderr.trim()}`,
    )
  return run.stdout
}

/** `kubectl kustomize DIR` (DIR relative to the repository): the YAML `kubectl apply -k` would send. */
export function kustomize(dir: string): string {
  return kubectl(['kustomize', dir])
}

/** Each document of a YAML stream, decoded by kubectl, in order. */
export function decode(yaml: string): KubeObject[] {
  const out = kubectl(
    ['patch', '--local', '--filename=-', '--type=merge', '--patch={}', '--output=jsonpath={@}{"\\n"}'],
    yaml,
  )
  return out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as KubeObject)
}

/** Every directory under manifests/ that holds a kustomization, relative to the repository. */
export function kustomizationDirs(root = join(REPO_ROOT, 'manifests')): string[] {
  const found: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name))
      else if (
        entry.name === 'kustomization.yaml' ||
        entry.name === 'kustomization.yml' ||
        entry.name === 'Kustomization'
      )
        found.push(relative(REPO_ROOT, dir))
    }
  }
  walk(root)
  return found.sort()
}

/** The chart, under manifests/helm/. */
export const CHART_DIR = join(REPO_ROOT, 'manifests', 'helm', 'pullguard')
const HELM = (await ensureClusterBinaries()).helm

/** helm without a cluster (template, lint, install --dry-run=client). */
export function helm(args: readonly string[], options: { input?: string } = {}): Promise<HelmRun> {
  return runHelm(HELM, args, { ...options, cwd: REPO_ROOT })
}

/** `helm template` of the chart with these values (as a values file), as YAML; throws on failure. */
export async function helmTemplate(
  values: unknown,
  options: { release?: string; namespace?: string } = {},
): Promise<string> {
  const run = await helm(
    [
      'template',
      options.release ?? 'pullguard',
      CHART_DIR,
      '--namespace',
      options.namespace ?? 'pullguard',
      '--values',
      '-',
    ],
    { input: JSON.stringify(values) },
  )
  if (run.status !== 0)
    throw new KubectlError('KubectlFailed', `helm template exited with ${run.status}: ${run.stderr.trim()}`)
  return run.stdout
}
