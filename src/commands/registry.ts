/**
 * How every command reaches registries: one client (connection pools, tokens, per-host slots)
 * and one cached checker over it, built from the flags they all share.
 */
import type { MirrorRoutes } from '../mirrors/routes.js'
import { CachedChecker, type CheckObserver } from '../registry/cached-checker.js'
import { RegistryClient, type RegistryClientOptions } from '../registry/index.js'

/** --registry-ca, --insecure-registry, NODE_EXTRA_CA_CERTS and --registry-concurrency. */
export interface RegistryFlags {
  registryCaPem: string | undefined
  insecureRegistries: string[]
  nodeExtraCaCertsPath: string | undefined
  registryConcurrency: number
}

export interface Registries {
  client: RegistryClient
  checker: CachedChecker
}

export interface RegistryExtras {
  /** Where the nodes pull from (--containerd-hosts-dir, --registries-conf). */
  routes?: MirrorRoutes | undefined
  onRequest?: RegistryClientOptions['onRequest']
  observer?: CheckObserver
  /** serve --pin-digests: a tag's answer kept for its digest too (cached-checker.ts). */
  keepDigestAnswers?: boolean
}

/**
 * `budgetMs` is what one image may take: the review's budget for serve, --timeout for the others.
 * Half of it per request: a registry that hangs on the first credential still leaves time to try
 * the next one before the answer is due.
 */
export function openRegistries(flags: RegistryFlags, budgetMs: number, extras: RegistryExtras = {}): Registries {
  const client = new RegistryClient({
    trust: { extraCaPem: flags.registryCaPem, nodeExtraCaCertsPath: flags.nodeExtraCaCertsPath },
    insecureRegistries: flags.insecureRegistries,
    requestTimeoutMs: Math.max(200, Math.floor(budgetMs / 2)),
    requestsPerRegistry: flags.registryConcurrency,
    ...(extras.routes === undefined ? {} : { router: extras.routes }),
    ...(extras.onRequest === undefined ? {} : { onRequest: extras.onRequest }),
  })
  const checker = new CachedChecker(client, {
    checkBudgetMs: budgetMs,
    ...(extras.observer === undefined ? {} : { observer: extras.observer }),
    ...(extras.keepDigestAnswers === true ? { keepDigestAnswers: true } : {}),
  })
  return { client, checker }
}
