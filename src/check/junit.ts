/**
 * `check --output junit`: JUnit XML, as Jenkins, GitLab and Azure DevOps read test reports. One
 * suite per file, one test case per image. An image that fails the run is a `<failure>` (will not
 * pull) or an `<error>` (not verified, under --on-registry-error deny); one reported as a warning
 * (not verified, or warn mode) is `<skipped>` with the reason, because it was not shown pullable.
 */
import type { CheckReport, ImageReport, ObjectReport } from './report.js'

export function renderJunit(report: CheckReport): string {
  const suites = new Map<string, Array<{ o: ObjectReport; i: ImageReport }>>()
  for (const o of report.objects) {
    const name = o.file ?? 'stdin'
    const cases = suites.get(name) ?? []
    cases.push(...o.images.map((i) => ({ o, i })))
    suites.set(name, cases)
  }
  const all = [...suites.values()].flat()
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="pullguard"${counts(all)}>`]
  for (const [name, cases] of suites) {
    lines.push(`  <testsuite name="${xml(name)}"${counts(cases)}>`)
    for (const { o, i } of cases) lines.push(...testCase(name, o, i))
    lines.push('  </testsuite>')
  }
  lines.push('</testsuites>')
  return lines.join('\n') + '\n'
}

type Outcome = 'passed' | 'failure' | 'error' | 'skipped'

function outcome(i: ImageReport): Outcome {
  if (i.severity === 'none') return 'passed'
  if (i.severity === 'warning') return 'skipped'
  return i.verdict === 'not-pullable' ? 'failure' : 'error'
}

function counts(cases: ReadonlyArray<{ i: ImageReport }>): string {
  const n = (k: Outcome): number => cases.filter(({ i }) => outcome(i) === k).length
  return ` tests="${cases.length}" failures="${n('failure')}" errors="${n('error')}" skipped="${n('skipped')}"`
}

function testCase(suite: string, o: ObjectReport, i: ImageReport): string[] {
  const classname = `${o.kind}.${o.namespace}.${o.name}`
  const where = `${o.file === undefined ? '' : ` file="${xml(o.file)}"`}${i.line === undefined ? '' : ` line="${i.line}"`}`
  const open = `    <testcase name="${xml(`${i.container} ${i.image}`)}" classname="${xml(classname)}"${where}`
  const kind = outcome(i)
  if (kind === 'passed') return [`${open}/>`]
  const body = [i.problem, ...(i.fix.length > 0 ? ['Fix:', ...i.fix.map((f) => `  ${f}`)] : [])]
  if (o.renderedFrom !== undefined) body.push(`Rendered from ${o.renderedFrom}.`)
  const at = `${o.file ?? suite}${i.line === undefined ? '' : `:${i.line}`}`
  const message = `${i.reason}: ${i.image} (${at})`
  const inner =
    kind === 'skipped'
      ? `      <skipped message="${xml(`${i.verdict === 'unknown' ? 'not verified' : 'warning'}: ${message}`)}"/>`
      : `      <${kind} type="${xml(i.reason)}" message="${xml(message)}">${xml(body.join('\n'))}</${kind}>`
  const out = [`${open}>`, inner]
  if (kind === 'skipped') out.push(`      <system-out>${xml(body.join('\n'))}</system-out>`)
  out.push('    </testcase>')
  return out
}

/** XML text and attribute values: the five entities, line breaks kept in attributes, and no characters XML 1.0 forbids. */
function xml(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
}
