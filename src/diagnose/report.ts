/**
 * What `pullguard diagnose` prints: per stuck pod, per container, the kubelet's words, pullguard's
 * finding now and the fix; or the same as JSON with stable field names. And the exit status:
 * 0 nothing stuck or everything pulls now, 1 some container is still broken, 3 only containers
 * pullguard could not verify. (2, usage errors and pods that cannot be read, never reaches a report.)
 */
import type { DiagnoseTarget } from './config.js'
import type { SecretState } from './fixes.js'
import type { PodDiagnosis } from './run.js'

export interface DiagnoseReport {
  scope: { kind: DiagnoseTarget['kind']; namespace?: string; name?: string }
  pods: PodDiagnosis[]
  summary: {
    podsExamined: number
    podsStuck: number
    containers: number
    stillBroken: number
    pullsNow: number
    unknown: number
    exitCode: 0 | 1 | 3
  }
}

export function buildDiagnoseReport(
  scope: DiagnoseReport['scope'],
  examined: number,
  pods: PodDiagnosis[],
): DiagnoseReport {
  const stuck = pods.filter((p) => p.containers.length > 0)
  const all = stuck.flatMap((p) => p.containers)
  const stillBroken = all.filter((c) => c.verdict === 'still-broken').length
  const unknown = all.filter((c) => c.verdict === 'unknown').length
  const exitCode = stillBroken > 0 ? 1 : unknown > 0 ? 3 : 0
  return {
    scope,
    pods: stuck,
    summary: {
      podsExamined: examined,
      podsStuck: stuck.length,
      containers: all.length,
      stillBroken,
      pullsNow: all.length - stillBroken - unknown,
      unknown,
      exitCode,
    },
  }
}

export function renderDiagnoseJson(report: DiagnoseReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}

const SECRET_WORDS: Record<Exclude<SecretState['state'], 'found'>, string> = {
  missing: 'does not exist',
  forbidden: 'not readable with your credentials',
  error: 'could not be read',
  'wrong-type': 'not a docker-registry secret (ignored by the kubelet)',
  unparseable: 'does not parse (the kubelet fails every pull of the pod)',
}

function secretLine(secrets: readonly SecretState[]): string {
  if (secrets.length === 0) return 'none listed'
  return secrets
    .map((s) =>
      s.state === 'found'
        ? `"${s.name}" found (${s.registries.join(', ') || 'no registries'})`
        : `"${s.name}" ${SECRET_WORDS[s.state]}`,
    )
    .join(', ')
}

export function renderDiagnoseText(report: DiagnoseReport): string {
  const lines: string[] = []
  const label = (name: string, text: string): string => `    ${(name + ':').padEnd(9)} ${text}`
  for (const pod of report.pods) {
    lines.push(
      `pod ${pod.namespace}/${pod.name} (${pod.workload}${pod.node === undefined ? '' : `, node ${pod.node}${pod.pool === undefined ? '' : ` in pool ${pod.pool}`}`}, service account ${pod.serviceAccount})`,
    )
    lines.push(`  pull secrets: ${secretLine(pod.pullSecrets)}`)
    for (const c of pod.containers) {
      lines.push(`  container "${c.container}" (${c.field}): ${c.waiting}`)
      lines.push(label('image', c.image))
      if (c.kubelet !== undefined) {
        const times = `${c.kubelet.count} time${c.kubelet.count === 1 ? '' : 's'}${c.kubelet.lastSeen === undefined ? '' : `, last ${c.kubelet.lastSeen}`}`
        lines.push(label('kubelet', `${c.kubelet.message} (${times})`))
      } else {
        lines.push(
          label('kubelet', `${c.waitingMessage ?? 'no message'} (no event left: the API keeps events about an hour)`),
        )
      }
      lines.push(label('now', `${c.reason}: ${c.now}`))
      for (const [i, fix] of c.fixes.entries()) lines.push(i === 0 ? label('fix', fix) : `${' '.repeat(14)}${fix}`)
    }
    for (const w of pod.warnings) lines.push(`  warning: ${w}`)
    lines.push('')
  }
  const s = report.summary
  const where =
    report.scope.kind === 'pod'
      ? `pod ${report.scope.namespace}/${report.scope.name}`
      : report.scope.kind === 'namespace'
        ? `namespace ${report.scope.namespace}`
        : 'all namespaces'
  if (s.podsStuck === 0) {
    lines.push(
      report.scope.kind === 'pod'
        ? `${where} is not waiting on an image pull`
        : `no pod in ${where} is waiting on an image pull (${s.podsExamined} examined)`,
    )
  } else {
    const counts = `${s.stillBroken} still broken, ${s.pullsNow} pull${s.pullsNow === 1 ? 's' : ''} now, ${s.unknown} not verified`
    const containers = `${s.containers} container${s.containers === 1 ? '' : 's'}`
    lines.push(
      report.scope.kind === 'pod'
        ? `${where}: ${containers} stuck on image pulls: ${counts}`
        : `${s.podsStuck} pod${s.podsStuck === 1 ? '' : 's'} in ${where} stuck on image pulls, ${containers}: ${counts}`,
    )
  }
  return lines.join('\n') + '\n'
}
