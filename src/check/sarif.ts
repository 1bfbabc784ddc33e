/**
 * `check --output sarif`: SARIF 2.1.0, as GitHub code scanning, GitLab and Azure DevOps read it.
 * One result per image that will not pull (or was not verified), at the line of its `image:`
 * field; the rule is the reason code, the message the webhook's sentence, its Markdown the fix.
 */
import { createHash } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { REASON_MEANINGS } from '../policy/reason-meanings.js'
import type { OutcomeReason } from '../policy/outcome.js'
import { findingMarkdown } from './markdown.js'
import type { CheckReport, ImageReport, ObjectReport } from './report.js'

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json'

/** Where findings read from stdin are reported without --stdin-name. */
const STDIN = 'stdin'

export interface SarifTool {
  version: string
  /** The folder relative file names are under: %SRCROOT%. */
  cwd: string
}

export function renderSarif(report: CheckReport, tool: SarifTool): string {
  const findings = report.objects.flatMap((o) => o.images.filter((i) => i.severity !== 'none').map((i) => ({ o, i })))
  const ruleIds = [...new Set(findings.map(({ i }) => i.reason))].sort()
  const log = {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'pullguard',
            version: tool.version,
            semanticVersion: tool.version,
            rules: ruleIds.map((id) => ({
              id,
              name: id,
              shortDescription: { text: meaning(id) },
              defaultConfiguration: { level: 'error' },
            })),
          },
        },
        // Columns as the YAML parser counts them: UTF-16 code units.
        columnKind: 'utf16CodeUnits',
        originalUriBaseIds: {
          '%SRCROOT%': { uri: pathToFileURL(tool.cwd.endsWith('/') ? tool.cwd : `${tool.cwd}/`).href },
        },
        invocations: [
          {
            executionSuccessful: true,
            exitCode: report.summary.exitCode,
            // The run's notes, and each object's warnings (a pull secret not read, a pool where it fails).
            toolExecutionNotifications: [
              ...report.notes.map((n) => ({ level: 'note', message: { text: n } })),
              ...report.objects.flatMap((o) =>
                o.warnings.map((w) => ({
                  level: 'warning',
                  message: { text: `${o.kind} ${o.namespace}/${o.name}: ${w}` },
                })),
              ),
            ],
          },
        ],
        results: findings.map(({ o, i }) => result(o, i, ruleIds.indexOf(i.reason))),
      },
    ],
  }
  return JSON.stringify(log, null, 2) + '\n'
}

function meaning(id: string): string {
  return REASON_MEANINGS[id as OutcomeReason] ?? id
}

function result(o: ObjectReport, i: ImageReport, ruleIndex: number): Record<string, unknown> {
  const object = `${o.kind} ${o.namespace}/${o.name}`
  const rendered = o.renderedFrom === undefined ? '' : ` (rendered from ${o.renderedFrom})`
  // Code scanning refuses a result without a file: stdin without --stdin-name is reported at
  // `stdin`, its lines counted in the stream.
  const physical = {
    artifactLocation: relativeUri(o.file ?? STDIN),
    ...(i.line === undefined
      ? {}
      : { region: { startLine: i.line, ...(i.column === undefined ? {} : { startColumn: i.column }) } }),
  }
  return {
    ruleId: i.reason,
    ruleIndex,
    level: i.severity,
    message: {
      text: `${object}, ${i.container}: ${i.message}${rendered}`,
      markdown: `**${object}**, container **${i.container}**${rendered}: ${findingMarkdown(i)}`,
    },
    locations: [
      {
        physicalLocation: physical,
        logicalLocations: [{ fullyQualifiedName: `${object}/${i.field}`, kind: 'resource' }],
      },
    ],
    // Stable while lines move: the file, the object, the field and the image, not the position.
    partialFingerprints: {
      'pullguard/v1': createHash('sha256')
        .update([o.file ?? STDIN, o.kind, o.namespace, o.name, i.field, i.image, i.reason].join('\u0000'))
        .digest('hex')
        .slice(0, 32),
    },
    properties: {
      image: i.image,
      verdict: i.verdict,
      ...(o.renderedFrom === undefined ? {} : { renderedFrom: o.renderedFrom }),
    },
  }
}

/** A relative file under %SRCROOT% (each segment percent-encoded); an absolute one as a file: URI. */
function relativeUri(file: string): { uri: string; uriBaseId?: string } {
  if (file.startsWith('/') || /^[A-Za-z]:\//.test(file)) return { uri: pathToFileURL(file).href }
  return { uri: file.split('/').map(encodeURIComponent).join('/'), uriBaseId: '%SRCROOT%' }
}
