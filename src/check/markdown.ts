/**
 * A finding as Markdown, for SARIF's message.markdown and the GitHub job summary: what is wrong
 * in the webhook's words, then the fix with each command as code, ready to copy.
 */
import type { FixStep } from '../policy/fixes.js'
import type { ImageReport } from './report.js'

export function findingMarkdown(image: ImageReport): string {
  const lines = [text(image.problem)]
  if (image.fixSteps.length > 0) {
    lines.push('', '**Fix:**', '')
    for (const step of image.fixSteps) lines.push(...stepMarkdown(step))
  }
  return lines.join('\n')
}

function stepMarkdown(step: FixStep): string[] {
  if (step.command === undefined) return [`- ${text(step.text)}`]
  const fence = '`'.repeat(Math.max(3, longestRun(step.command, '`') + 1))
  return [`- ${text(step.text)}:`, '', `  ${fence}sh`, ...step.command.split('\n').map((l) => `  ${l}`), `  ${fence}`]
}

function longestRun(s: string, c: string): number {
  let best = 0
  let run = 0
  for (const ch of s) {
    run = ch === c ? run + 1 : 0
    best = Math.max(best, run)
  }
  return best
}

/** Plain text that Markdown must not read as markup or HTML. */
export function text(s: string): string {
  return s.replace(/[\\`*_{}[\]<>|#]/g, (c) => `\\${c}`)
}

/** One cell of a Markdown table: no line breaks, pipes escaped. */
export function cell(s: string): string {
  return text(s).replace(/\r?\n/g, ' ')
}

/** Inline code, whatever backticks it holds. */
export function code(s: string): string {
  const ticks = '`'.repeat(longestRun(s, '`') + 1)
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : ''
  return `${ticks}${pad}${s.replace(/\r?\n/g, ' ')}${pad}${ticks}`
}

/**
 * Text inside an HTML element (a `<summary>`), where Markdown escapes do not apply; on one line,
 * since a blank line would end the HTML block and let the rest be read as Markdown.
 */
export function html(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\r?\n|\r/g, ' ')
}

/** Inline code in a table cell: GitHub splits cells at a pipe even inside code. */
export function codeCell(s: string): string {
  return code(s).replaceAll('|', '\\|')
}
