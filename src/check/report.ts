/**
 * What `pullguard check` prints: a JSON document with stable field names (reason codes are the
 * webhook's), or a table and the fix lines under it (messages.explain, the webhook's sentences).
 * And the exit status: 0 every image pullable; 1 one definitely not; 3 only undetermined ones
 * under --on-registry-error deny. (2, usage and input errors, never reaches a report.)
 */
import { isAbsolute, relative, resolve } from 'node:path'
import { fixLines, fixSteps, type FixStep } from '../policy/fixes.js'
import { explainGroup, explainProblem, groupOutcomes, secretProblemsWarning } from '../policy/messages.js'
import type { OnRegistryError } from '../policy/decide.js'
import { acrossPoolsView, poolStatus } from '../policy/pool-verdict.js'
import { pullability, reasonCode, type Pullability } from '../policy/outcome.js'
import type { CheckMode } from './config.js'
import type { CheckedObject } from './run.js'
import { imagePosition } from './objects.js'
import { OFFLINE_SECRET_DETAIL } from './offline-cluster.js'

/**
 * What a finding is in CI (SARIF level, annotation command, JUnit element): decided here once.
 * `error` fails the run; `warning` is shown and does not; `none` is a pullable image.
 */
export type Severity = 'error' | 'warning' | 'none'

export interface ReportPolicy {
  onRegistryError: OnRegistryError
  mode: CheckMode
}

export interface ReportOptions extends ReportPolicy {
  /** Said once for the whole run. */
  notes: string[]
  /** Kubernetes objects that carry no pod spec. */
  skippedObjects: number
  /** --stdin-name: the file findings from stdin are reported at. */
  stdinName: string | undefined
  /** Files are reported relative to this folder (the repository's root in CI). */
  cwd: string
}

export interface ImageReport {
  container: string
  field: string
  image: string
  verdict: Pullability
  reason: string
  /** The webhook's denial entry for this image: what is wrong and the fix. */
  message: string
  /** What is wrong, without the fix: the formats that set the fix apart start with it. */
  problem: string
  /** The fix, one step per line (empty when there is nothing to fix). */
  fix: string[]
  /** The same steps with their commands apart, for formats that set commands as code. */
  fixSteps: FixStep[]
  severity: Severity
  /** The line and column of its `image:` field in `source`, when the file has one there. */
  line?: number
  column?: number
}

export interface ObjectReport {
  kind: string
  namespace: string
  name: string
  source: string
  /**
   * Where CI formats report it: `source` relative to the working folder, with `/`; --stdin-name
   * for stdin; absent for stdin without a name.
   */
  file?: string
  /** `helm template` output: the chart template the object was rendered from. */
  renderedFrom?: string
  images: ImageReport[]
  warnings: string[]
  /** The images that are not pullable, those with the same cause and fix together, as the webhook words them. */
  fixes: string[]
  /**
   * With --node-pools, when the pools differ: each pool the pods can land on, whether they would
   * start there and each image's reason. `images` above are the pools the verdict rests on.
   */
  pools?: Array<{ pool: string; runtimes: string[]; starts: 'pulls' | 'unknown' | 'fails'; reasons: string[] }>
}

export interface CheckReport {
  objects: ObjectReport[]
  /** Said once for the whole run: credential helpers, pull secrets not read. */
  notes: string[]
  summary: {
    objects: number
    images: number
    pullable: number
    notPullable: number
    unknown: number
    skippedObjects: number
    exitCode: 0 | 1 | 3
  }
}

export function buildReport(checked: readonly CheckedObject[], options: ReportOptions): CheckReport {
  const { notes, skippedObjects } = options
  const objects = checked.map((c): ObjectReport => {
    const { object, serviceAccountWarning, secretProblems, target } = c
    // Across pools: the outcomes the verdict rests on, and a warning for each other pool's cause.
    const view = c.pools === undefined ? { outcomes: c.outcomes, warnings: [] } : acrossPoolsView(c.pools, target)
    const outcomes = view.outcomes
    const s = object.subject
    // Offline, every listed secret is "not read": that is said once in the notes, not per object.
    const problems = secretProblems.filter((p) => !(p.kind === 'error' && p.detail.includes(OFFLINE_SECRET_DETAIL)))
    const warnings = [...view.warnings, serviceAccountWarning, secretProblemsWarning(problems)].filter(
      (w): w is string => w !== undefined,
    )
    return {
      kind: s.kind,
      namespace: s.namespace,
      name: s.name,
      source: object.source,
      ...withFile(reportedFile(object.source, options)),
      ...(object.document.renderedFrom === undefined ? {} : { renderedFrom: object.document.renderedFrom }),
      images: outcomes.map((o) => {
        const own = groupOutcomes([o], target)[0]!
        const position = imagePosition(object, o.use)
        return {
          container: o.use.container,
          field: o.use.field,
          image: o.use.image,
          verdict: pullability(o),
          reason: reasonCode(o),
          message: explainGroup(own),
          problem: explainProblem(own),
          fix: own.fix === undefined ? [] : fixLines(own.fix),
          fixSteps: own.fix === undefined ? [] : fixSteps(own.fix),
          severity: severity(pullability(o), options),
          ...(position === undefined ? {} : { line: position.line, column: position.column }),
        }
      }),
      warnings,
      fixes:
        target === undefined
          ? []
          : groupOutcomes(
              outcomes.filter((o) => pullability(o) !== 'pullable'),
              target,
            ).map(explainGroup),
      ...(c.pools === undefined
        ? {}
        : {
            pools: c.pools.map((j) => ({
              pool: j.pool,
              runtimes: j.runtimes,
              starts: poolStatus(j.outcomes),
              reasons: j.outcomes.map(reasonCode),
            })),
          }),
    }
  })
  const all = objects.flatMap((o) => o.images)
  const count = (v: Pullability): number => all.filter((i) => i.verdict === v).length
  const notPullable = count('not-pullable')
  const unknown = count('unknown')
  const exitCode =
    options.mode === 'warn' ? 0 : notPullable > 0 ? 1 : unknown > 0 && options.onRegistryError === 'deny' ? 3 : 0
  return {
    objects,
    notes,
    summary: {
      objects: objects.length,
      images: all.length,
      pullable: count('pullable'),
      notPullable,
      unknown,
      skippedObjects,
      exitCode,
    },
  }
}

/** A file inside `cwd` by its relative path (what code scanning and annotations resolve), else absolute. */
export function reportedFile(source: string, options: Pick<ReportOptions, 'stdinName' | 'cwd'>): string | undefined {
  // --stdin-name is a path like any other: `./x.yaml`, or absolute inside the folder, is `x.yaml`.
  const named = source === '-' ? options.stdinName : source
  if (named === undefined) return undefined
  const absolute = resolve(options.cwd, named)
  const path = relative(options.cwd, absolute)
  const inside = path !== '' && !path.startsWith('..') && !isAbsolute(path)
  return (inside ? path : absolute).replaceAll('\\', '/')
}

function withFile(file: string | undefined): { file?: string } {
  return file === undefined ? {} : { file }
}

/**
 * An image that will not pull fails the run, one that could not be verified fails it only under
 * --on-registry-error deny; in warn mode neither does.
 */
export function severity(verdict: Pullability, policy: ReportPolicy): Severity {
  if (verdict === 'pullable') return 'none'
  if (policy.mode === 'warn') return 'warning'
  return verdict === 'not-pullable' || policy.onRegistryError === 'deny' ? 'error' : 'warning'
}

export function renderJson(report: CheckReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}

const HEADERS = ['OBJECT', 'CONTAINER', 'IMAGE', 'VERDICT', 'REASON'] as const

export function renderTable(report: CheckReport): string {
  const rows = report.objects.flatMap((o) =>
    o.images.map((i) => [
      `${o.kind.toLowerCase()} ${o.namespace}/${o.name}`,
      i.container,
      i.image,
      i.verdict,
      i.reason,
    ]),
  )
  const lines: string[] = []
  if (rows.length === 0) lines.push('no images to check')
  else {
    const widths = HEADERS.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
    const format = (cells: readonly string[]): string =>
      cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')
    lines.push(format(HEADERS), ...rows.map(format))
  }
  const fixes = report.objects.flatMap((o) =>
    o.fixes.map(
      (f) => `- ${o.kind.toLowerCase()} ${o.namespace}/${o.name} (${o.source === '-' ? 'stdin' : o.source}): ${f}`,
    ),
  )
  if (fixes.length > 0) lines.push('', ...fixes)
  const warnings = report.objects.flatMap((o) =>
    o.warnings.map((w) => `warning: ${o.kind.toLowerCase()} ${o.namespace}/${o.name}: ${w}`),
  )
  const notes = report.notes.map((n) => `note: ${n}`)
  if (warnings.length + notes.length > 0) lines.push('', ...warnings, ...notes)
  const s = report.summary
  lines.push(
    '',
    `${s.images} images in ${s.objects} objects: ${s.pullable} pullable, ${s.notPullable} not pullable, ${s.unknown} unknown`,
  )
  return lines.join('\n') + '\n'
}
