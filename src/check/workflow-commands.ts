/**
 * `check --output github`: GitHub Actions workflow commands, which the runner turns into
 * annotations on the image's line in the pull request's diff: `::error` for an image that fails
 * the run, `::warning` for one reported as a warning. GitHub shows at most 10 of each kind per
 * step, so the table follows for the log, and job-summary.ts writes the whole report.
 */
import { randomBytes } from 'node:crypto'
import type { CheckReport, ImageReport, ObjectReport } from './report.js'

export function renderWorkflowCommands(report: CheckReport): string {
  const lines: string[] = []
  for (const o of report.objects) {
    for (const i of o.images) if (i.severity !== 'none') lines.push(annotation(o, i))
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

function annotation(o: ObjectReport, i: ImageReport): string {
  const properties: string[] = []
  if (o.file !== undefined) {
    properties.push(`file=${property(o.file)}`)
    if (i.line !== undefined) properties.push(`line=${i.line}`)
    if (i.column !== undefined) properties.push(`col=${i.column}`)
  }
  properties.push(
    `title=${property(`pullguard ${i.reason}: ${o.kind.toLowerCase()} ${o.namespace}/${o.name}, container ${i.container}`)}`,
  )
  const body = [i.problem, ...(i.fix.length > 0 ? ['Fix:', ...i.fix.map((f) => `  ${f}`)] : [])]
  if (o.renderedFrom !== undefined) body.push(`Rendered from ${o.renderedFrom}.`)
  return `::${i.severity} ${properties.join(',')}::${data(body.join('\n'))}`
}

/** The runner's own escapes (@actions/core's escapeData): a message may span lines. */
export function data(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}

/** escapeProperty: also `:` and `,`, which end a property. */
export function property(s: string): string {
  return data(s).replace(/:/g, '%3A').replace(/,/g, '%2C')
}

/**
 * Text the runner must not read as commands (`::stop-commands::TOKEN` … `::TOKEN::`), with a
 * token nobody can guess, so no line of it can end the pause early.
 */
export function withoutCommands(text: string, token = randomBytes(16).toString('hex')): string {
  return `::stop-commands::${token}\n${text}${text.endsWith('\n') ? '' : '\n'}::${token}::\n`
}
