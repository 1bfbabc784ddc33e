/**
 * The cluster's node pools as reviews see them: each pool's shape and the readers of its files,
 * and its nodes now (read from the Node objects every few minutes, stale-while-revalidate, like
 * the platforms). Without a node list (no RBAC for it, `check` offline) every pool is known only
 * by its file, which keeps every pool a pod could land on: never a denial on a guess.
 */
import type { Logger } from 'pino'
import type { Clock } from '../cache/ttl-cache.js'
import { Refreshed } from '../kube/refreshed.js'
import type { NodeListSource, NodeObject, Lookup } from '../kube/sources.js'
import { assignNodes, placePod, type Placement, type PoolNodes } from '../pools/placement.js'
import type { NodeSummary, PoolShape } from '../pools/pool.js'
import type { PodScheduling } from '../pools/scheduling.js'
import type { AssessOptions } from './assess.js'
import { DEFAULT_READ_TIMEOUT_MS, DEFAULT_REFRESH_MS, DEFAULT_RETRY_MS } from './node-platforms.js'
import { normalizePlatform } from './platforms.js'

/** What one kind of node pulls with: the readers of its files (shared by pools whose files are equal). */
export type NodeSide = Pick<
  AssessOptions,
  'checker' | 'nodeCredentials' | 'credentialProviders' | 'pullRules' | 'signaturePolicies'
>

export interface JudgedPool extends PoolShape {
  node: NodeSide
}

export interface NodePoolsOptions {
  refreshMs?: number
  retryMs?: number
  readTimeoutMs?: number
  clock?: Clock
}

export class NodePools {
  readonly pools: readonly JudgedPool[]
  readonly #source: NodeListSource | undefined
  readonly #nodes: Refreshed<PoolNodes<JudgedPool>[]> | undefined
  readonly #empty: PoolNodes<JudgedPool>[]

  constructor(
    pools: readonly JudgedPool[],
    source: NodeListSource | undefined,
    logger: Logger,
    options: NodePoolsOptions = {},
  ) {
    this.pools = pools
    this.#source = source
    this.#empty = pools.map((shape) => ({ shape, nodes: [] }))
    let unpooledSeen = -1
    this.#nodes =
      source === undefined
        ? undefined
        : new Refreshed(
            async (signal): Promise<Lookup<PoolNodes<JudgedPool>[]>> => {
              const r = await source.listNodes(signal)
              if (r.kind !== 'found')
                return r.kind === 'missing' ? { kind: 'error', detail: 'not found (HTTP 404)' } : r
              const { pools: placed, unpooled } = assignNodes(pools, r.object.map(summary))
              if (unpooled.length !== unpooledSeen && unpooled.length > 0)
                logger.warn(
                  { nodes: unpooled.slice(0, 10).map((n) => n.name), count: unpooled.length },
                  'nodes that no pool of --node-pools takes: pods landing there are not judged for them',
                )
              unpooledSeen = unpooled.length
              return { kind: 'found', object: placed }
            },
            {
              refreshMs: options.refreshMs ?? DEFAULT_REFRESH_MS,
              retryMs: options.retryMs ?? DEFAULT_RETRY_MS,
              readTimeoutMs: options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
              ...(options.clock === undefined ? {} : { clock: options.clock }),
              onRead: (r) => {
                if (!r.ok)
                  logger.warn(
                    { detail: r.detail },
                    'cannot read the Node objects; judging every pool by its file alone (grant pullguard "list nodes")',
                  )
              },
            },
          )
  }

  /** The pools a pod can land on, with their nodes now. Never throws. */
  async place(pod: PodScheduling, signal?: AbortSignal): Promise<Placement<JudgedPool>> {
    const pools = (await this.#nodes?.get(signal)) ?? this.#empty
    return placePod(pod, pools)
  }

  /** The pools and their nodes as known now, without waiting: the memo's input (a new object after each read). */
  current(): unknown {
    return this.#nodes?.current()
  }

  /** The images a node holds (status.images), for a pod bound to it; undefined when they cannot be read. */
  async nodeImages(name: string, signal?: AbortSignal): Promise<readonly string[] | undefined> {
    const r = await this.#source?.getNodeImages(name, signal)
    return r?.kind === 'found' ? r.object : undefined
  }
}

function summary(n: NodeObject): NodeSummary {
  return {
    name: n.name,
    labels: n.labels,
    taints: n.taints,
    platform: normalizePlatform({ os: n.os, architecture: n.architecture }),
    runtime: n.runtime,
  }
}
