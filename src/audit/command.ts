/**
 * `pullguard audit [-n NS | -A]`: one audit pass, from a terminal or CI, with the user's
 * kubeconfig: every workload listed, every image judged as the webhook would judge a CREATE of
 * it, and the report (report.ts). Usage errors throw ConfigError; workloads that cannot be listed
 * throw TargetError; the CLI prints either on one line and exits 2.
 */
import { directChecker } from '../auditor/checkers.js'
import { passTotals, runPass } from '../auditor/pass.js'
import { workloadLister, workloadPages } from '../auditor/workload-api.js'
import { userCluster } from '../commands/cluster.js'
import { TargetError } from '../commands/errors.js'
import { renderHelp, type CommandHelp } from '../commands/flag-table.js'
import { wantsHelp } from '../commands/flags.js'
import { openNodePools } from '../commands/pools.js'
import { createLogger } from '../log/logger.js'
import { progressLine } from '../log/progress.js'
import { NamespaceModes } from '../policy/namespace-mode.js'
import { NodePlatforms } from '../policy/node-platforms.js'
import { NodePools } from '../policy/node-pools.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import { AUDIT_OPTIONS, parseAuditConfig } from './config.js'
import { AuditReportWriter, type AuditReport } from './report.js'

export const AUDIT_HELP: CommandHelp = {
  name: 'audit',
  summary: 'find workloads whose images would no longer pull',
  usage: ['audit [-n NS | -A] [flags]'],
  description: [
    'Lists every workload (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, bare Pods, …) and judges each image as the webhook would judge a CREATE of it: a tag deleted since, a secret expired, a workload scaled to zero that would not come back. Each distinct question (image and credentials) is asked once, paced per registry.',
  ],
  exitCodes: [
    [0, 'every image can be pulled'],
    [1, 'some image cannot be pulled'],
    [2, 'bad flags, or the workloads cannot be listed'],
    [3, 'some image could not be verified'],
  ],
  examples: [
    ['one namespace', 'pullguard audit -n team-a'],
    ['the whole cluster, as JSON', 'pullguard audit -A -o json'],
  ],
}

export async function audit(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(renderHelp(AUDIT_HELP, AUDIT_OPTIONS))
    return 0
  }
  const config = parseAuditConfig(argv)
  const {
    kubeConfig: kc,
    api,
    namespace: contextNamespace,
  } = await userCluster(config.kubeconfigPath, 'audit', config.timeoutMs, config.context)
  const namespace = config.scope.kind === 'all-namespaces' ? undefined : (config.scope.namespace ?? contextNamespace)
  const scope: AuditReport['scope'] =
    namespace === undefined ? { kind: 'all-namespaces' } : { kind: 'namespace', namespace }
  const logger = createLogger('silent')
  const where = namespace === undefined ? 'all namespaces' : `namespace ${namespace}`

  // Each pool's files (one pool without --node-pools); the pass asks each pool's registry client directly.
  const opened = openNodePools(config.nodePools, config, config.timeoutMs, {
    logger,
    watch: false,
    serviceAccounts: api,
  })
  const direct = new Map(opened.registries.map((r) => [r.checker as ImageChecker, directChecker(r.client)]))
  const first = opened.pools[0]!.node
  const progress = progressLine(config.progress, 'containers')
  const report = new AuditReportWriter(scope, config.output, (text) => process.stdout.write(text))
  let listed = 0
  let done = 0
  // One page of workloads at a time, each page's questions answered and its report written before
  // the next (which is read meanwhile): memory holds a page, not the cluster.
  const listing = new AbortController()
  const list = workloadLister(kc)
  const pageTimeoutMs = Math.max(config.timeoutMs * 10, 60_000)
  const paged: typeof list = (kind, ns, token, signal) =>
    list(kind, ns, token, AbortSignal.any([signal, AbortSignal.timeout(pageTimeoutMs)]))
  const pages = counted(workloadPages(paged, namespace, listing.signal), (page) => {
    listed += page.reduce((n, w) => n + w.subject.images.length, 0)
  })
  try {
    const pass = await runPass(pages, {
      assess: {
        ...first,
        checker: direct.get(first.checker)!,
        secrets: api,
        serviceAccounts: api,
        modes: new NamespaceModes(api, 'enforce'),
        clusterPlatforms: new NodePlatforms(api, config.platforms, logger),
      },
      pools: new NodePools(opened.pools, api, logger),
      checkerFor: (c) => direct.get(c) ?? c,
      qps: config.qps,
      spreadMs: 0,
      timeoutMs: config.timeoutMs,
      signal: new AbortController().signal,
      onFinding: () => progress.update(++done, listed),
      onWorkload: (w, findings) => report.workload(w, findings),
      onTagMoved: (m) => report.tagMoved(m),
    })
    progress.done()
    return report.end(passTotals(pass)).exitCode
  } catch (err) {
    if (!(err instanceof ListingFailed)) throw err
    throw new TargetError(`the workloads of ${where} cannot be listed: ${listProblem(err.cause)}`)
  } finally {
    listing.abort()
    progress.done()
    await opened.close()
  }
}

/** A failure to list, told apart from a failure of the pass. */
class ListingFailed extends Error {}

/** The pages as they come, each told to `seen`; a listing failure thrown as a ListingFailed. */
async function* counted<T>(pages: AsyncIterable<T>, seen: (page: T) => void): AsyncGenerator<T> {
  const it = pages[Symbol.asyncIterator]()
  for (;;) {
    let next: IteratorResult<T>
    try {
      next = await it.next()
    } catch (err) {
      throw new ListingFailed('list', { cause: err })
    }
    if (next.done === true) return
    seen(next.value)
    yield next.value
  }
}

/** Status code and reason only (never a body, which can quote the objects). */
function listProblem(err: unknown): string {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'number')
    return code === 403
      ? `403 Forbidden (your credentials may not list them)`
      : code === 401
        ? '401 Unauthorized'
        : `HTTP ${code}`
  if (err instanceof Error && err.name === 'AbortError') return 'the API server did not answer in time'
  return (err as NodeJS.ErrnoException).code ?? 'the API server could not be reached'
}
