/**
 * The GitHub job summary (`$GITHUB_STEP_SUMMARY`, Markdown) that `--output github` appends to: a
 * line with the counts, a table of every image that will not pull or was not verified with
 * the file and line, under it each finding's message and fix, then the objects' warnings and the
 * run's notes. Annotations are capped per step; this is the whole report.
 */
import { cell, codeCell, findingMarkdown, html, text } from './markdown.js'
import type { CheckReport } from './report.js'

export function renderJobSummary(report: CheckReport): string {
  const s = report.summary
  const failing = report.objects.flatMap((o) => o.images.filter((i) => i.severity !== 'none').map((i) => ({ o, i })))
  const headline =
    s.notPullable > 0
      ? `${s.notPullable} of ${s.images} images will not pull`
      : s.unknown > 0
        ? `${s.unknown} of ${s.images} images could not be verified`
        : `all ${s.images} images can be pulled`
  const lines = [
    `### pullguard: ${headline}`,
    '',
    `${s.images} images in ${s.objects} objects: ${s.pullable} pullable, ${s.notPullable} not pullable, ${s.unknown} unknown.`,
  ]
  if (failing.length > 0) {
    lines.push('', '| | object | container | image | reason | where |', '|---|---|---|---|---|---|')
    for (const { o, i } of failing) {
      const where = o.file === undefined ? 'stdin' : `${o.file}${i.line === undefined ? '' : `:${i.line}`}`
      lines.push(
        `| ${i.severity === 'error' ? '❌' : '⚠️'} | ${cell(`${o.kind.toLowerCase()} ${o.namespace}/${o.name}`)} | ${cell(i.container)} | ${codeCell(i.image)} | ${codeCell(i.reason)} | ${cell(where)} |`,
      )
    }
    for (const { o, i } of failing) {
      lines.push(
        '',
        `<details><summary>${html(`${o.kind.toLowerCase()} ${o.namespace}/${o.name}, ${i.container}: ${i.reason}`)}</summary>`,
        '',
        findingMarkdown(i),
        '',
        '</details>',
      )
    }
  }
  const warnings = report.objects.flatMap((o) =>
    o.warnings.map(
      (w) => `- ${text(`${o.kind.toLowerCase()} ${o.namespace}/${o.name}: ${w}`).replace(/\r?\n|\r/g, ' ')}`,
    ),
  )
  if (warnings.length > 0) lines.push('', '**Warnings**', '', ...warnings)
  const notes = report.notes.map((n) => `> ${text(n)}`)
  if (notes.length > 0) lines.push('', ...notes)
  return lines.join('\n') + '\n'
}
