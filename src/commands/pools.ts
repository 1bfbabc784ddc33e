/**
 * Every node pool's files opened once per set of equal files: pools whose files are the same share
 * one set of readers, one registry client and one result cache, so a question asked for one is
 * answered for all. A pool without mirrors shares the command's own client and cache.
 */
import type { Logger } from 'pino'
import { NodeDockerConfig, NodeDockerConfigError } from '../credentials/node-config.js'
import type { NodeSide, JudgedPool } from '../policy/node-pools.js'
import type { ProvidersOptions } from '../providers/providers.js'
import type { ServiceAccountAccess } from '../providers/service-account-tokens.js'
import { ConfigError } from './errors.js'
import { openMirrors } from './mirrors.js'
import type { PoolSettings } from './node-pools.js'
import { startCredentialProviders } from './providers.js'
import { openRegistries, type Registries, type RegistryExtras, type RegistryFlags } from './registry.js'
import { openSignaturePolicies } from './signature-policy.js'

export interface OpenedPools {
  pools: JudgedPool[]
  /** The registry clients and caches, the command's own first. */
  registries: Registries[]
  /** The first pool's client and cache (the audit's, until it judges per pool). */
  first: Registries
  /** What the memo compares by identity: each reader's generation or entries. */
  inputs(): unknown[]
  close(): Promise<void>
}

export interface PoolExtras extends Omit<RegistryExtras, 'routes'> {
  logger: Logger
  /** serve: files are read again when they change. */
  watch: boolean
  serviceAccounts?: ServiceAccountAccess
  onExec?: ProvidersOptions['onExec']
}

export function openNodePools(
  settings: readonly PoolSettings[],
  flags: RegistryFlags,
  budgetMs: number,
  extras: PoolExtras,
): OpenedPools {
  const { logger, watch } = extras
  const registryExtras: RegistryExtras = {
    ...(extras.onRequest === undefined ? {} : { onRequest: extras.onRequest }),
    ...(extras.observer === undefined ? {} : { observer: extras.observer }),
    ...(extras.keepDigestAnswers === true ? { keepDigestAnswers: true } : {}),
  }
  const own = openRegistries(flags, budgetMs, registryExtras)
  const registries: Registries[] = [own]
  const sides = new Map<string, NodeSide>()
  const registryOf = new Map<NodeSide, Registries>()
  const closers: Array<() => void | Promise<void>> = [() => own.client.close()]
  const inputs: Array<() => unknown> = []
  const pools = settings.map((pool): JudgedPool => {
    let side = sides.get(pool.nodeKey)
    if (side === undefined) {
      const node = pool.node
      const routes = openMirrors(node.mirrors, logger, { watch })
      const signatures = openSignaturePolicies(node.signatures, logger, { watch })
      const credentials = nodeDockerConfig(node.nodeDockerConfigPath, logger, watch)
      const providers = startCredentialProviders(node.credentialProviders, budgetMs, logger, {
        watch,
        ...(extras.onExec === undefined ? {} : { onExec: extras.onExec }),
        ...(extras.serviceAccounts === undefined ? {} : { serviceAccounts: extras.serviceAccounts }),
      })
      let registry = own
      if (routes !== undefined) {
        registry = openRegistries(flags, budgetMs, { ...registryExtras, routes })
        registries.push(registry)
        closers.push(() => registry.client.close())
      }
      closers.push(
        () => routes?.close(),
        () => signatures?.close(),
        () => credentials?.close(),
        () => providers?.close(),
      )
      inputs.push(
        () => credentials?.entries(),
        () => providers?.generation,
        () => routes?.generation,
        () => signatures?.generation,
      )
      side = {
        checker: registry.checker,
        ...(credentials === undefined ? {} : { nodeCredentials: credentials }),
        ...(providers === undefined ? {} : { credentialProviders: providers }),
        ...(routes === undefined ? {} : { pullRules: routes }),
        ...(signatures === undefined ? {} : { signaturePolicies: signatures }),
      }
      sides.set(pool.nodeKey, side)
      registryOf.set(side, registry)
    }
    const { node: _files, nodeKey: _key, ...shape } = pool
    return { ...shape, node: side }
  })
  return {
    pools,
    registries,
    first: registryOf.get(pools[0]!.node)!,
    inputs: () => inputs.map((read) => read()),
    close: async () => {
      for (const close of closers) await close()
    },
  }
}

/** A pool's docker config: watched under serve (a mounted Secret is swapped in place). */
function nodeDockerConfig(path: string | undefined, logger: Logger, watch: boolean): NodeDockerConfig | undefined {
  if (path === undefined) return undefined
  try {
    return new NodeDockerConfig(path, logger, { watch })
  } catch (err) {
    if (err instanceof NodeDockerConfigError) throw new ConfigError('--node-docker-config', err.message)
    throw err
  }
}
