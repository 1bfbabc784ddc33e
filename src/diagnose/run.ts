/**
 * `pullguard diagnose` assembled: pods stuck on an image pull → their kubelet events, their node's
 * platform and their own pull secrets → assess() (the webhook's path to per-image outcomes) → a
 * finding and fix per container. Receives its collaborators, so the CLI and tests build it alike.
 */
import { setMaxListeners } from 'node:events'
import { pool } from '../async/pool.js'
import { readPodSpec, type PodSpecView } from '../admission/pod-spec.js'
import { ReviewDecodeError } from '../admission/review.js'
import type {
  Lookup,
  NodeListSource,
  PodEvent,
  PodObject,
  PodSource,
  SecretSource,
  ServiceAccountSource,
} from '../kube/sources.js'
import { assessDeadlineMs } from '../policy/assess.js'
import { assessAcrossPools, type PooledOptions } from '../policy/across-pools.js'
import type { NodePools } from '../policy/node-pools.js'
import { DEFAULT_POOL } from '../pools/pool.js'
import { needsAccount, secretStates } from '../policy/fix-target.js'
import { claimListedSecrets } from '../policy/fixes.js'
import { labelsIgnored } from '../policy/namespace-mode.js'
import type { ImageOutcome } from '../policy/outcome.js'
import type { Platform } from '../policy/platforms.js'
import type { ImageUse, PodSubject } from '../policy/subject.js'
import { findingFor, neverPullFinding, type FixContext, type SecretState, type Verdict } from './fixes.js'
import { workloadOf } from './owner.js'
import {
  failingContainers,
  kubeletCause,
  kubeletEvent,
  type KubeletCause,
  type PullFailureReason,
} from './pull-failures.js'

export type DiagnoseApi = PodSource & SecretSource & ServiceAccountSource & NodeListSource

export interface DiagnoseSettings {
  /** Per image, as in check. */
  timeoutMs: number
  /**
   * The node pools (one without --node-pools), each with its files: a stuck pod is judged on the
   * pool of the node it is bound to, as that node's kubelet and runtime pull.
   */
  pools: NodePools
}

export interface ContainerDiagnosis {
  container: string
  /** `spec.containers[0]`. */
  field: string
  image: string
  /** The kubelet's waiting reason: ErrImagePull, ImagePullBackOff, … */
  waiting: PullFailureReason
  waitingMessage: string | undefined
  /** The event that says why, when the API still has it (events expire after an hour by default). */
  kubelet:
    | { reason: string; message: string; count: number; lastSeen: string | undefined; cause: KubeletCause }
    | undefined
  verdict: Verdict
  reason: string
  now: string
  fixes: string[]
}

export interface PodDiagnosis {
  namespace: string
  name: string
  node: string | undefined
  /** The node's pool (--node-pools), when the node is in one. */
  pool?: string
  /** `deployment/api`, `pod/debug`: where fixes go. */
  workload: string
  serviceAccount: string
  pullSecrets: SecretState[]
  containers: ContainerDiagnosis[]
  /** What could not be read (events, the node), one line each. */
  warnings: string[]
}

/** Pods examined at once in a namespace: each makes a few API reads and registry checks. */
const PARALLEL_PODS = 4

export class Diagnoser {
  readonly #api: DiagnoseApi
  readonly #settings: DiagnoseSettings
  readonly #assess: PooledOptions

  constructor(api: DiagnoseApi, settings: DiagnoseSettings) {
    this.#api = api
    this.#settings = settings
    this.#assess = {
      // Each pool brings its own node side (checker, node credentials, plugins, mirrors, policy).
      ...settings.pools.pools[0]!.node,
      secrets: api,
      serviceAccounts: api,
      // Diagnosis reports what the kubelet meets: namespace modes and exemptions do not apply.
      modes: labelsIgnored(),
      pools: settings.pools,
    }
  }

  /** Every pod of the list that is stuck on a pull, diagnosed, in namespace/name order. */
  async pods(pods: readonly PodObject[]): Promise<PodDiagnosis[]> {
    const stuck = pods
      .filter(isStuck)
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))
    return pool(stuck, { limit: PARALLEL_PODS }, (pod) => this.pod(pod))
  }

  async pod(pod: PodObject): Promise<PodDiagnosis> {
    const failing = failingContainers(pod.containers)
    const workload = workloadOf(pod)
    const warnings: string[] = []
    let spec: PodSpecView
    try {
      spec = readPodSpec(pod.spec, 'spec')
    } catch (err) {
      if (!(err instanceof ReviewDecodeError)) throw err
      spec = readPodSpec(undefined, 'spec')
      warnings.push(`the pod spec could not be read: ${err.reason}`)
    }
    const serviceAccount = spec.serviceAccountName ?? 'default'
    const base = {
      namespace: pod.namespace,
      name: pod.name,
      node: pod.nodeName,
      workload: `${workload.resource}/${workload.name}`,
      serviceAccount,
    }
    if (failing.length === 0) return { ...base, pullSecrets: [], containers: [], warnings }

    const uses = failing.map((c) => ({
      c,
      use: spec.images.find(
        (u) => u.kind === 'container' && u.container === c.name && u.field.startsWith(`spec.${c.list}[`),
      ),
    }))
    const checked = uses.flatMap(({ use }) => (use === undefined ? [] : [use]))
    const subject: PodSubject = {
      namespace: pod.namespace,
      kind: 'Pod',
      name: pod.name,
      specField: 'spec',
      template: false,
      images: checked,
      pullSecrets: spec.imagePullSecrets,
      serviceAccountName: spec.serviceAccountName,
      // The pod is bound: its node's pool and platform are the only ones that matter.
      scheduling: {
        nodeSelector: {},
        nodeSelectorTerms: [],
        ...(pod.nodeName === undefined ? {} : { nodeName: pod.nodeName }),
      },
    }
    // One period more than assess needs: the pod's events and its node are read first.
    const signal = AbortSignal.timeout(assessDeadlineMs(subject, this.#settings.timeoutMs) + this.#settings.timeoutMs)
    setMaxListeners(0, signal)

    const [events, node] = await Promise.all([
      this.#api.listPodEvents(pod.namespace, pod.name, pod.uid, signal),
      pod.nodeName === undefined ? Promise.resolve(undefined) : this.#api.getNodePlatform(pod.nodeName, signal),
    ])
    if (events.kind !== 'found') warnings.push(`events could not be read: ${lookupProblem(events)}`)
    if (node !== undefined && node.kind !== 'found')
      warnings.push(`node ${pod.nodeName} could not be read (${lookupProblem(node)}): its platform was not checked`)
    const nodePlatform: Platform | undefined = node?.kind === 'found' ? node.object : undefined

    const found = await assessAcrossPools(
      {
        ...this.#assess,
        ...(nodePlatform === undefined ? {} : { clusterPlatforms: { platforms: async () => [nodePlatform] } }),
      },
      subject,
      signal,
    )
    if (found.mode !== 'enforce') throw new Error(`unexpected mode ${found.mode} in diagnose`)
    // Bound to a node of a pool: that pool's answer (a pod on an unknown node is judged on every pool, the first said).
    const pool = found.pools?.how === 'bound' ? found.pools.judged[0]!.pool : undefined
    const pullSecrets = secretStates(spec.imagePullSecrets, found.secretsLoaded, found.secretProblems)

    const outcomes = new Map<ImageUse, ImageOutcome>(found.outcomes.map((o, i) => [checked[i]!, o]))
    const account = needsAccount(found.outcomes, pullSecrets, pod.namespace)
      ? await this.#api.getServiceAccount(pod.namespace, serviceAccount, signal)
      : undefined
    const ctx: FixContext = {
      namespace: pod.namespace,
      pod: pod.name,
      workload,
      secrets: pullSecrets,
      serviceAccount: {
        name: serviceAccount,
        imagePullSecrets: account?.kind === 'found' ? account.object.imagePullSecrets : undefined,
      },
      nodePlatform,
      node: pod.nodeName,
      secretServers: claimListedSecrets(found.outcomes, pullSecrets, pod.namespace),
    }

    const eventList: PodEvent[] = events.kind === 'found' ? events.object : []
    const containers = uses.map(({ c, use }): ContainerDiagnosis => {
      const event = kubeletEvent(eventList, c)
      const kubelet =
        event === undefined
          ? undefined
          : {
              reason: event.reason,
              message: event.message,
              count: event.count,
              lastSeen: event.lastSeen,
              cause: kubeletCause(event.message),
            }
      const cause = kubelet?.cause ?? (c.waitingMessage === undefined ? undefined : kubeletCause(c.waitingMessage))
      const outcome = use === undefined ? undefined : outcomes.get(use)
      const image = use?.image ?? specImage(pod.spec, c.list, c.name) ?? ''
      const finding =
        outcome !== undefined
          ? findingFor(outcome, ctx, cause)
          : c.reason === 'ErrImageNeverPull' || neverPulled(pod.spec, c.list, c.name)
            ? neverPullFinding(c.name, image, ctx)
            : undefined
      return {
        container: c.name,
        field: use?.field ?? `spec.${c.list}`,
        image,
        waiting: c.reason,
        waitingMessage: c.waitingMessage,
        kubelet,
        ...(finding ?? {
          verdict: 'unknown',
          reason: 'NotInSpec',
          now: `the pod spec has no ${c.list} entry named "${c.name}"`,
          fixes: [],
        }),
      }
    })
    return {
      ...base,
      ...(pool === undefined || pool === DEFAULT_POOL ? {} : { pool }),
      pullSecrets,
      containers,
      warnings,
    }
  }
}

export function isStuck(pod: PodObject): boolean {
  return failingContainers(pod.containers).length > 0
}

function lookupProblem(l: Exclude<Lookup<unknown>, { kind: 'found' }>): string {
  return l.kind === 'missing' ? 'not found' : l.detail
}

function container(spec: unknown, list: string, name: string): Record<string, unknown> | undefined {
  const items = typeof spec === 'object' && spec !== null ? (spec as Record<string, unknown>)[list] : undefined
  if (!Array.isArray(items)) return undefined
  return items.find(
    (c): c is Record<string, unknown> =>
      typeof c === 'object' && c !== null && (c as Record<string, unknown>).name === name,
  )
}

function specImage(spec: unknown, list: string, name: string): string | undefined {
  const image = container(spec, list, name)?.image
  return typeof image === 'string' ? image : undefined
}

function neverPulled(spec: unknown, list: string, name: string): boolean {
  return container(spec, list, name)?.imagePullPolicy === 'Never'
}
