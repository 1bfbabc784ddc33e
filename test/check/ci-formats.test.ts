// The CI formats from a report built by hand: what each does with an object's warnings and with
// names and images that hold Markdown, HTML or table syntax.
import t from 'tap'
import { renderJobSummary } from '../../src/check/job-summary.js'
import type { CheckReport, ImageReport } from '../../src/check/report.js'
import { renderSarif } from '../../src/check/sarif.js'
import { withoutCommands } from '../../src/check/workflow-commands.js'

const image: ImageReport = {
  container: 'app',
  field: 'spec.containers[0]',
  image: 'reg.example/a|b:1',
  verdict: 'not-pullable',
  reason: 'TagNotFound',
  message: 'container "app": tag "1" does not exist. Fix: use 1.0.',
  problem: 'container "app": tag "1" does not exist.',
  fix: ['use 1.0'],
  fixSteps: [{ text: 'use 1.0' }],
  severity: 'error',
  line: 7,
  column: 7,
}
const report: CheckReport = {
  objects: [
    {
      kind: 'Pod',
      namespace: 'a',
      name: 'web\n\n<b>x</b>',
      source: 'k8s/web.yaml',
      file: 'k8s/web.yaml',
      images: [image],
      warnings: ['fails on node pool gpu; pulls on general'],
      fixes: [],
    },
  ],
  notes: ['a note'],
  summary: { objects: 1, images: 1, pullable: 0, notPullable: 1, unknown: 0, skippedObjects: 0, exitCode: 1 },
}

t.test('job summary: warnings listed, a pipe kept in its cell, the <summary> on one line', async (t) => {
  const md = renderJobSummary(report)
  t.match(md, '\n**Warnings**\n\n- pod a/web  \\<b\\>x\\</b\\>: fails on node pool gpu; pulls on general\n')
  t.match(md, '| `reg.example/a\\|b:1` |', 'the pipe escaped inside the code span')
  const summaryLine = md.split('\n').find((l) => l.startsWith('<details>'))
  t.equal(summaryLine, '<details><summary>pod a/web  &lt;b&gt;x&lt;/b&gt;, app: TagNotFound</summary>')
  t.match(md, '\n> a note\n')
})

t.test('SARIF: warnings as notifications, beside the notes', async (t) => {
  const log = JSON.parse(renderSarif(report, { version: '1.2.3', cwd: '/repo' }))
  t.same(log.runs[0].invocations[0].toolExecutionNotifications, [
    { level: 'note', message: { text: 'a note' } },
    { level: 'warning', message: { text: 'Pod a/web\n\n<b>x</b>: fails on node pool gpu; pulls on general' } },
  ])
  t.equal(log.runs[0].columnKind, 'utf16CodeUnits')
  t.equal(log.runs[0].originalUriBaseIds['%SRCROOT%'].uri, 'file:///repo/')
})

t.test('withoutCommands: the text between a pause and its token', async (t) => {
  t.equal(withoutCommands('a\n::error::x\n', 'f00'), '::stop-commands::f00\na\n::error::x\n::f00::\n')
  t.equal(withoutCommands('no newline', 'f00'), '::stop-commands::f00\nno newline\n::f00::\n')
  t.not(withoutCommands('x').split('\n')[0], withoutCommands('x').split('\n')[0], 'a new token each time')
})
