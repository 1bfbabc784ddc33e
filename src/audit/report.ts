/**
 * What `pullguard audit` prints: each workload with an image that would not pull now, its
 * containers with the reason and diagnose's fix lines; or the same as JSON with stable field
 * names. Exit status: 0 everything pulls, 1 something would not, 3 only unverified images.
 */
import type { AuditFinding } from '../auditor/finding.js'
import type { TagMoved } from '../auditor/pass.js'
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
  /**
   * Information, present when there are some: containers of pinned pods whose tag now names
   * another manifest (the pods pull their pinned digest; a pod made now would get the new one).
   */
  tagsMoved?: Array<{
    kind: string
    namespace: string
    name: string
    container: string
    field: string
    pinned: string
    tag: string
    now: string
  }>
  summary: {
    workloads: number
    images: number
    pullable: number
    notPullable: number
    unverified: number
    /** Distinct registry questions (image and credentials by value) the run asked. */
    questions: number
    /** Requests it made to registries: a manifest check per question, a tag listing per missing tag's repository. */
    registryRequests: number
    exitCode: 0 | 1 | 3
  }
}

type ReportWorkload = AuditReport['workloads'][number]

/**
 * The report written as it is known: each workload with something that would not pull as soon as
 * its batch is judged (in listing order: kind by kind, then namespace and name), the summary last.
 * The JSON is the same document a whole report would be, written in pieces, so nothing but the
 * workload at hand is held.
 */
export class AuditReportWriter {
  readonly #scope: AuditReport['scope']
  readonly #json: boolean
  readonly #write: (text: string) => void
  readonly #counts = { workloads: 0, images: 0, pullable: 0, notPullable: 0, unverified: 0 }
  readonly #moved: NonNullable<AuditReport['tagsMoved']> = []
  #written = 0

  constructor(scope: AuditReport['scope'], output: 'table' | 'json', write: (text: string) => void) {
    this.#scope = scope
    this.#json = output === 'json'
    this.#write = write
  }

  workload(w: AuditWorkload, findings: readonly AuditFinding[]): void {
    const c = this.#counts
    c.workloads++
    c.images += findings.length
    for (const f of findings) {
      if (f.result === 'pullable') c.pullable++
      else if (f.result === 'not-pullable') c.notPullable++
      else c.unverified++
    }
    // In the order of the pod spec, whichever container's answer came first.
    const order = new Map(w.subject.images.map((u, i) => [u.field, i]))
    // A container that pulls on some pools but not on others is told too: it depends on where pods land.
    const images = findings
      .filter((f) => f.result !== 'pullable' || (f.pools?.fails.length ?? 0) > 0)
      .sort((a, b) => (order.get(a.field) ?? 0) - (order.get(b.field) ?? 0))
      .map(({ workload: _, ...image }) => image)
    if (images.length === 0) return
    const entry: ReportWorkload = {
      kind: w.kind,
      namespace: w.namespace,
      name: w.name,
      scaledToZero: w.scaledToZero,
      images,
    }
    if (this.#json) {
      const head = this.#written === 0 ? `{\n  "scope": ${nested(this.#scope, 2)},\n  "workloads": [\n` : ',\n'
      this.#write(`${head}    ${nested(entry, 4)}`)
    } else {
      this.#write(textWorkload(entry))
    }
    this.#written++
  }

  /** A pinned pod's tag that moved: said after the workloads, as information. */
  tagMoved(m: TagMoved): void {
    const { kind, namespace, name } = m.workload
    this.#moved.push({
      kind,
      namespace,
      name,
      container: m.container,
      field: m.field,
      pinned: m.pinned,
      tag: m.tag,
      now: m.now,
    })
  }

  /** Writes the summary (and closes the JSON document); returns it with the exit status. */
  end(asked: { questions: number; registryRequests: number }): AuditReport['summary'] {
    const c = this.#counts
    const summary: AuditReport['summary'] = {
      ...c,
      questions: asked.questions,
      registryRequests: asked.registryRequests,
      exitCode: c.notPullable > 0 ? 1 : c.unverified > 0 ? 3 : 0,
    }
    if (this.#json) {
      const head = this.#written === 0 ? `{\n  "scope": ${nested(this.#scope, 2)},\n  "workloads": [],\n` : '\n  ],\n'
      const moved = this.#moved.length === 0 ? '' : `  "tagsMoved": ${nested(this.#moved, 2)},\n`
      this.#write(`${head}${moved}  "summary": ${nested(summary, 2)}\n}\n`)
    } else {
      if (this.#moved.length > 0) this.#write(textMoved(this.#moved))
      this.#write(textSummary(this.#scope, summary) + '\n')
    }
    return summary
  }
}

/** JSON.stringify's two-space layout, for a value written at `depth` spaces in. */
function nested(value: unknown, depth: number): string {
  return JSON.stringify(value, null, 2).replaceAll('\n', `\n${' '.repeat(depth)}`)
}

function textWorkload(w: ReportWorkload): string {
  const lines: string[] = []
  const label = (name: string, text: string): string => `    ${(name + ':').padEnd(9)} ${text}`
  lines.push(
    `${w.kind.toLowerCase()} ${w.namespace}/${w.name}${w.scaledToZero ? ' (scaled to zero: it would not come back)' : ''}`,
  )
  for (const i of w.images) {
    lines.push(`  container "${i.container}" (${i.field}): ${i.result}`)
    lines.push(label('image', i.image))
    lines.push(label('reason', `${i.reason}: ${i.problem}`))
    if (i.pools !== undefined) lines.push(label('pools', poolsLine(i.pools)))
    if (i.result === 'pullable' && i.message !== '') lines.push(label('but', i.message))
    for (const [n, fix] of i.fix.entries()) lines.push(n === 0 ? label('fix', fix) : `${' '.repeat(14)}${fix}`)
  }
  lines.push('')
  return lines.join('\n') + '\n'
}

/** `pulls on gpu; fails on general, spare; not verified on arm`. */
function poolsLine(p: NonNullable<AuditFinding['pools']>): string {
  return [
    p.pulls.length > 0 ? `pulls on ${p.pulls.join(', ')}` : '',
    p.fails.length > 0 ? `fails on ${p.fails.join(', ')}` : '',
    p.unverified.length > 0 ? `not verified on ${p.unverified.join(', ')}` : '',
  ]
    .filter((x) => x !== '')
    .join('; ')
}

function textMoved(moved: NonNullable<AuditReport['tagsMoved']>): string {
  const lines = [
    'tags moved since their pods were pinned (information: these pods pull the digest they were pinned to):',
  ]
  for (const m of moved)
    lines.push(
      `  ${m.kind.toLowerCase()} ${m.namespace}/${m.name} container "${m.container}" (${m.field}): ${m.tag} now names ${m.now}; pinned ${m.pinned}`,
    )
  return lines.join('\n') + '\n\n'
}

function textSummary(scope: AuditReport['scope'], s: AuditReport['summary']): string {
  const where = scope.kind === 'namespace' ? `namespace ${scope.namespace}` : 'all namespaces'
  return `${s.images} image${s.images === 1 ? '' : 's'} in ${s.workloads} workload${s.workloads === 1 ? '' : 's'} (${where}): ${s.pullable} pullable, ${s.notPullable} not pullable, ${s.unverified} unverified`
}
