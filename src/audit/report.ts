/**
 * What `pullguard audit` prints: each workload with an image that would not pull now, its
 * containers with the reason and diagnose's fix lines; or the same as JSON with stable field
 * names. Exit status: 0 everything pulls, 1 something would not, 3 only unverified images.
 */
import type { AuditFinding } from '../auditor/pass.js'
import type { AuditWorkload } from '../auditor/workloads.js'

export interface AuditReport {
  scope: { kind: 'all-namespaces' } | { kind: 'namespace'; namespace: string }
  workloads: Array<{
    kind: string
    namespace: string
    name: string
    scaledToZero: boolean
    images: Array<Omit<AuditFinding, 'workload'>>
  }>
  summary: {
    workloads: number
    images: number
    pullable: number
    notPullable: number
    unverified: number
    exitCode: 0 | 1 | 3
  }
}

export function buildAuditReport(
  scope: AuditReport['scope'],
  audited: readonly AuditWorkload[],
  findings: readonly AuditFinding[],
): AuditReport {
  const byWorkload = new Map<string, AuditReport['workloads'][number]>()
  const key = (w: Pick<AuditWorkload, 'kind' | 'namespace' | 'name'>): string => `${w.namespace}/${w.kind}/${w.name}`
  const order = [...findings].sort((a, b) => key(a.workload).localeCompare(key(b.workload)))
  for (const f of order) {
    if (f.result === 'pullable') continue
    const k = key(f.workload)
    let entry = byWorkload.get(k)
    if (entry === undefined)
      byWorkload.set(
        k,
        (entry = {
          kind: f.workload.kind,
          namespace: f.workload.namespace,
          name: f.workload.name,
          scaledToZero: f.workload.scaledToZero,
          images: [],
        }),
      )
    const { workload: _, ...image } = f
    entry.images.push(image)
  }
  const count = (r: AuditFinding['result']): number => findings.filter((f) => f.result === r).length
  const notPullable = count('not-pullable')
  const unverified = count('unverified')
  const exitCode = notPullable > 0 ? 1 : unverified > 0 ? 3 : 0
  return {
    scope,
    workloads: [...byWorkload.values()],
    summary: {
      workloads: audited.length,
      images: findings.length,
      pullable: count('pullable'),
      notPullable,
      unverified,
      exitCode,
    },
  }
}

export function renderAuditJson(report: AuditReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}

export function renderAuditText(report: AuditReport): string {
  const lines: string[] = []
  const label = (name: string, text: string): string => `    ${(name + ':').padEnd(9)} ${text}`
  for (const w of report.workloads) {
    lines.push(
      `${w.kind.toLowerCase()} ${w.namespace}/${w.name}${w.scaledToZero ? ' (scaled to zero: it would not come back)' : ''}`,
    )
    for (const i of w.images) {
      lines.push(`  container "${i.container}" (${i.field}): ${i.result}`)
      lines.push(label('image', i.image))
      lines.push(label('reason', `${i.reason}: ${i.problem}`))
      for (const [n, fix] of i.fix.entries()) lines.push(n === 0 ? label('fix', fix) : `${' '.repeat(14)}${fix}`)
    }
    lines.push('')
  }
  const s = report.summary
  const where = report.scope.kind === 'namespace' ? `namespace ${report.scope.namespace}` : 'all namespaces'
  lines.push(
    `${s.images} image${s.images === 1 ? '' : 's'} in ${s.workloads} workload${s.workloads === 1 ? '' : 's'} (${where}): ${s.pullable} pullable, ${s.notPullable} not pullable, ${s.unverified} unverified`,
  )
  return lines.join('\n') + '\n'
}
