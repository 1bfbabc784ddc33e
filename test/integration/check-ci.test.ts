// `pullguard check` in CI: SARIF (validated against the SARIF 2.1.0 schema), JUnit XML (parsed
// back), GitHub workflow commands and the job summary, each finding at the line of its `image:`
// field — in multi-document files, List kinds, image volumes, and Helm output read from stdin.
// The real CLI as a child process against real registries.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import AjvDraft04 from 'ajv-draft-04'
import addFormats from 'ajv-formats'
import { XMLParser } from 'fast-xml-parser'
import t, { type Test } from 'tap'
import { runCli, type CliRun } from '../helpers/cli.js'
import { closedPort } from '../helpers/fake-server.js'
import { FIXTURES_DIR } from '../helpers/fixtures.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => open.close())
for (const tag of ['1.0', '2.0']) await seedOciManifest(open, 'team/app', tag)
const dead = `127.0.0.1:${await closedPort()}`

const work = mkdtempSync(join(tmpdir(), 'pullguard-check-ci-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
mkdirSync(join(work, 'home'))

function check(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  return runCli(['check', '--registry-ca', ca.caPath, '--timeout', '2s', ...args], {
    env: { HOME: join(work, 'home'), DOCKER_CONFIG: join(work, 'home'), ...options.env },
    cwd: work,
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
  })
}

function file(name: string, lines: readonly string[]): string {
  const path = join(work, name)
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}

/** 1-based line of the first line holding `needle` (after line `after`), as an editor counts. */
function lineOf(lines: readonly string[], needle: string, after = 0): number {
  const i = lines.findIndex((l, n) => n >= after && l.includes(needle))
  if (i < 0) throw new Error(`no line holds ${needle}`)
  return i + 1
}

/** 1-based column of `key` on the line holding `needle`. */
function columnOf(lines: readonly string[], needle: string, key: string): number {
  return lines[lineOf(lines, needle) - 1]!.indexOf(key) + 1
}

const good = `${open.host}/team/app:1.0`
const missingTag = `${open.host}/team/app:9.9`
const missingVolume = `${open.host}/team/app:volume-gone`
const unreachable = `${dead}/team/app:1.0`

// A Deployment, a Service, a List holding a Pod with an image volume, and JSON: four documents.
const MULTI = [
  'apiVersion: apps/v1',
  'kind: Deployment',
  'metadata:',
  '  name: web',
  '  namespace: shop',
  'spec:',
  '  template:',
  '    spec:',
  '      initContainers:',
  '        - name: init',
  `          image: ${good}`,
  '      containers:',
  '        - name: web',
  '          # the tag that was never pushed',
  `          image: "${missingTag}"`,
  '---',
  'apiVersion: v1',
  'kind: Service',
  'metadata: {name: web}',
  '---',
  'apiVersion: v1',
  'kind: List',
  'items:',
  '  - apiVersion: v1',
  '    kind: Pod',
  '    metadata: {name: tools}',
  '    spec:',
  '      containers:',
  `        - {name: shell, image: "${unreachable}"}`,
  '      volumes:',
  '        - name: data',
  '          image:',
  `            reference: ${missingVolume}`,
  '---',
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'json' },
    spec: { containers: [{ name: 'j', image: missingTag }] },
  }),
]
const multiPath = file('deploy/multi.yaml', MULTI)

const schema = JSON.parse(readFileSync(join(FIXTURES_DIR, 'sarif/sarif-schema-2.1.0.json'), 'utf8'))
const ajv = new AjvDraft04.default({ allErrors: true, strict: false })
addFormats.default(ajv)
const validSarif = ajv.compile(schema)

function sarifOf(t: Test, r: CliRun): any {
  const log = JSON.parse(r.stdout)
  t.ok(validSarif(log), `valid SARIF 2.1.0: ${ajv.errorsText(validSarif.errors)}`)
  return log
}

t.test('SARIF: valid 2.1.0, one result per image that will not pull, at its image line', async (t) => {
  const r = await check(['-f', 'deploy/multi.yaml', '-o', 'sarif'])
  t.equal(r.code, 1, r.stderr)
  const log = sarifOf(t, r)
  const run = log.runs[0]
  t.equal(run.tool.driver.name, 'pullguard')
  t.match(run.tool.driver.version, /^\d+\.\d+\.\d+/)
  t.same(
    run.tool.driver.rules.map((rule: any) => rule.id),
    ['RegistryUnreachable', 'TagNotFound'],
    'a rule per reason found',
  )
  t.match(run.tool.driver.rules[1].shortDescription.text, /no such tag/)
  const at = (res: any): [string, string, number, number | undefined, string] => {
    const loc = res.locations[0].physicalLocation
    return [res.ruleId, loc.artifactLocation.uri, loc.region.startLine, loc.region.startColumn, res.level]
  }
  t.same(
    run.results.map(at),
    [
      ['TagNotFound', 'deploy/multi.yaml', lineOf(MULTI, `image: "${missingTag}"`), 11, 'error'],
      [
        'RegistryUnreachable',
        'deploy/multi.yaml',
        lineOf(MULTI, unreachable),
        columnOf(MULTI, unreachable, 'image:'),
        'warning',
      ],
      ['TagNotFound', 'deploy/multi.yaml', lineOf(MULTI, `reference: ${missingVolume}`), 13, 'error'],
      ['TagNotFound', 'deploy/multi.yaml', MULTI.length, columnOf(MULTI, '"kind":"Pod"', '"image"'), 'error'],
    ],
    'the image: line of a Deployment, a List item (flow style), an image volume and a JSON document',
  )
  for (const res of run.results) {
    t.equal(res.locations[0].physicalLocation.artifactLocation.uriBaseId, '%SRCROOT%')
    t.equal(run.tool.driver.rules[res.ruleIndex].id, res.ruleId, 'ruleIndex points at its rule')
  }
  t.equal(run.originalUriBaseIds['%SRCROOT%'].uri, `file://${work}/`)
  const web = run.results[0]
  t.match(web.message.text, `Deployment shop/web, web: `)
  t.match(web.message.text, /9\.9/)
  t.match(web.message.markdown, /\*\*Deployment shop\/web\*\*, container \*\*web\*\*/)
  t.match(web.message.markdown, /\*\*Fix:\*\*/, 'the fix in the markdown')
  t.same(web.locations[0].logicalLocations, [
    { fullyQualifiedName: 'Deployment shop/web/spec.template.spec.containers[0]', kind: 'resource' },
  ])
  t.match(web.partialFingerprints['pullguard/v1'], /^[0-9a-f]{32}$/)
  t.equal(run.invocations[0].exitCode, 1)
  // The validator is not a rubber stamp: what SARIF forbids, it refuses.
  t.notOk(validSarif({ ...log, version: '2.0.0' }), 'another version is refused')
  t.notOk(
    validSarif({ ...log, runs: [{ ...run, results: [{ ...web, level: 'fatal' }] }] }),
    'an unknown level is refused',
  )
})

t.test(
  'SARIF: --on-registry-error deny makes an unverified image an error; --mode warn makes all warnings and exits 0',
  async (t) => {
    const deny = sarifOf(t, await check(['-f', multiPath, '-o', 'sarif', '--on-registry-error', 'deny']))
    t.same(
      deny.runs[0].results.map((r: any) => r.level),
      ['error', 'error', 'error', 'error'],
    )
    const warnRun = await check(['-f', multiPath, '-o', 'sarif', '--mode', 'warn'])
    t.equal(warnRun.code, 0, 'warn mode never fails the run')
    t.same(
      sarifOf(t, warnRun).runs[0].results.map((r: any) => r.level),
      ['warning', 'warning', 'warning', 'warning'],
    )
  },
)

// What `helm template` prints: each document headed by the template it came from.
const HELM = [
  '---',
  '# Source: shop/templates/serviceaccount.yaml',
  'apiVersion: v1',
  'kind: ServiceAccount',
  'metadata:',
  '  name: shop',
  '---',
  '# Source: shop/templates/deployment.yaml',
  'apiVersion: apps/v1',
  'kind: Deployment',
  'metadata:',
  '  name: shop',
  '  labels:',
  '    helm.sh/chart: shop-0.1.0',
  'spec:',
  '  template:',
  '    spec:',
  '      serviceAccountName: shop',
  '      containers:',
  '        - name: shop',
  `          image: "${missingTag}"`,
  '          imagePullPolicy: IfNotPresent',
]

t.test('Helm output on stdin: lines within the stream, the template named, under --stdin-name', async (t) => {
  const named = sarifOf(
    t,
    await check(['-f', '-', '-o', 'sarif', '--stdin-name', 'rendered/shop.yaml'], { stdin: HELM.join('\n') + '\n' }),
  )
  const [res] = named.runs[0].results
  t.equal(named.runs[0].results.length, 1)
  t.same(res.locations[0].physicalLocation, {
    artifactLocation: { uri: 'rendered/shop.yaml', uriBaseId: '%SRCROOT%' },
    region: { startLine: lineOf(HELM, 'image:'), startColumn: 11 },
  })
  t.equal(res.properties.renderedFrom, 'shop/templates/deployment.yaml')
  t.match(res.message.text, '(rendered from shop/templates/deployment.yaml)')

  const unnamed = sarifOf(t, await check(['-f', '-', '-o', 'sarif'], { stdin: HELM.join('\n') + '\n' }))
  const loc = unnamed.runs[0].results[0].locations[0]
  // Code scanning refuses a result without a file.
  t.same(
    loc.physicalLocation,
    {
      artifactLocation: { uri: 'stdin', uriBaseId: '%SRCROOT%' },
      region: { startLine: lineOf(HELM, 'image:'), startColumn: 11 },
    },
    'stdin without a name is reported at stdin',
  )
  t.same(loc.logicalLocations, [
    { fullyQualifiedName: 'Deployment default/shop/spec.template.spec.containers[0]', kind: 'resource' },
  ])

  const gh = await check(['-f', '-', '-o', 'github', '--stdin-name', 'rendered/shop.yaml'], { stdin: HELM.join('\n') })
  t.match(
    gh.stdout.split('\n')[0],
    new RegExp(`^::error file=rendered/shop.yaml,line=${lineOf(HELM, 'image:')},col=11,title=`),
  )
  t.match(gh.stdout.split('\n')[0], '%0ARendered from shop/templates/deployment.yaml.')
})

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  isArray: (name) => name === 'testsuite' || name === 'testcase',
})

t.test('JUnit: a suite per file, a case per image; failures, errors and skips parsed back', async (t) => {
  const other = file('other.yaml', [
    'apiVersion: v1',
    'kind: Pod',
    'metadata: {name: fine, namespace: ops}',
    'spec:',
    '  containers:',
    `    - name: ok`,
    `      image: ${good}`,
  ])
  const r = await check(['deploy/multi.yaml', other, '-o', 'junit'])
  t.equal(r.code, 1, r.stderr)
  t.match(r.stdout, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /)
  const doc = parser.parse(r.stdout)
  const root = doc.testsuites
  t.match(root, { name: 'pullguard', tests: '6', failures: '3', errors: '0', skipped: '1' })
  t.same(
    root.testsuite.map((s: any) => [s.name, s.tests, s.failures]),
    [
      ['deploy/multi.yaml', '5', '3'],
      ['other.yaml', '1', '0'],
    ],
  )
  const cases = root.testsuite[0].testcase
  t.same(
    cases.map((c: any) => [
      c.classname,
      c.name,
      c.line,
      c.failure?.type ?? (c.skipped === undefined ? 'passed' : 'skipped'),
    ]),
    [
      ['Deployment.shop.web', `init ${good}`, String(lineOf(MULTI, `image: ${good}`)), 'passed'],
      ['Deployment.shop.web', `web ${missingTag}`, String(lineOf(MULTI, `image: "${missingTag}"`)), 'TagNotFound'],
      ['Pod.default.tools', `shell ${unreachable}`, String(lineOf(MULTI, unreachable)), 'skipped'],
      ['Pod.default.tools', `data ${missingVolume}`, String(lineOf(MULTI, missingVolume)), 'TagNotFound'],
      ['Pod.default.json', `j ${missingTag}`, String(MULTI.length), 'TagNotFound'],
    ],
  )
  t.match(
    cases[1].failure.message,
    `TagNotFound: ${missingTag} (deploy/multi.yaml:${lineOf(MULTI, `image: "${missingTag}"`)})`,
  )
  t.match(cases[1].failure['#text'], /Fix:/)
  t.match(cases[2].skipped.message, /^not verified: RegistryUnreachable: /)
  t.equal(cases[0].file, 'deploy/multi.yaml')

  const deny = parser.parse((await check(['deploy/multi.yaml', '-o', 'junit', '--on-registry-error', 'deny'])).stdout)
  t.match(deny.testsuites, { errors: '1', skipped: '0' }, 'not verified under deny: an error')
  t.equal(deny.testsuites.testsuite[0].testcase[2].error.type, 'RegistryUnreachable')
})

t.test('GitHub: annotations chosen by GITHUB_ACTIONS, exact workflow commands, and the job summary', async (t) => {
  const summary = join(work, 'summary.md')
  writeFileSync(summary, '# earlier step\n')
  const small = [
    'apiVersion: v1',
    'kind: Pod',
    'metadata: {name: p, namespace: a}',
    'spec:',
    '  containers:',
    '    - name: c',
    `      image: ${missingTag}`,
    '    - name: d',
    `      image: ${unreachable}`,
  ]
  file('small.yaml', small)
  const r = await check(['small.yaml'], { env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary } })
  t.equal(r.code, 1, r.stderr)
  const [first = '', second = ''] = r.stdout.split('\n')
  // The same findings as JSON give the exact text each annotation carries.
  const json = JSON.parse((await check(['small.yaml', '-o', 'json'])).stdout)
  const [c, d] = json.objects[0].images
  const escapeData = (s: string): string => s.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A')
  const body = (i: any): string =>
    escapeData([i.problem, ...(i.fix.length > 0 ? ['Fix:', ...i.fix.map((f: string) => `  ${f}`)] : [])].join('\n'))
  t.ok(c.fix.length > 0, 'the missing tag has a fix')
  t.equal(
    first,
    `::error file=small.yaml,line=7,col=7,title=pullguard TagNotFound%3A pod a/p%2C container c::${body(c)}`,
  )
  t.equal(
    second,
    `::warning file=small.yaml,line=9,col=7,title=pullguard RegistryUnreachable%3A pod a/p%2C container d::${body(d)}`,
  )
  t.match(first, '%0AFix:%0A', 'the fix on lines of its own')
  t.match(r.stdout, /\nOBJECT +CONTAINER +IMAGE/, 'the table follows for the log')
  const md = readFileSync(summary, 'utf8')
  t.match(md, /^# earlier step\n### pullguard: 1 of 2 images will not pull\n/, 'appended, not replaced')
  t.match(md, `| ❌ | pod a/p | c | \`${missingTag}\` | \`TagNotFound\` | small.yaml:7 |`)
  t.match(md, `| ⚠️ | pod a/p | d | \`${unreachable}\` | \`RegistryUnreachable\` | small.yaml:9 |`)
  t.match(md, '<details><summary>pod a/p, c: TagNotFound</summary>')

  const table = await check(['small.yaml'], { env: { GITHUB_ACTIONS: 'false' } })
  t.match(table.stdout, /^OBJECT/, 'outside Actions: the table')
  const named = await check(['small.yaml', '-o', 'json'], {
    env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary },
  })
  t.equal(JSON.parse(named.stdout).objects[0].images[0].line, 7, 'a named output wins, and JSON carries the line')
  t.equal(readFileSync(summary, 'utf8'), md, 'only --output github writes the job summary')
})

t.test('a clean run: no results, an empty annotation list, a passing suite', async (t) => {
  const path = file('clean.yaml', [
    'apiVersion: v1',
    'kind: Pod',
    'metadata: {name: ok}',
    'spec:',
    '  containers:',
    `    - {name: c, image: "${good}"}`,
  ])
  const sarif = await check([path, '-o', 'sarif'])
  t.equal(sarif.code, 0)
  t.same(sarifOf(t, sarif).runs[0].results, [])
  const gh = await check([path, '-o', 'github'])
  t.match(
    gh.stdout,
    /^::stop-commands::[0-9a-f]{32}\nOBJECT/,
    'no annotation when nothing is wrong: the table, set apart',
  )
  const junit = parser.parse((await check([path, '-o', 'junit'])).stdout)
  t.match(junit.testsuites, { tests: '1', failures: '0', errors: '0', skipped: '0' })
})

t.test(
  'names that hold line breaks cannot pass for workflow commands, in the table, the summary or an error',
  async (t) => {
    const summary = join(work, 'hostile-summary.md')
    writeFileSync(summary, '')
    const hostile = [
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: "p\\n::error file=README.md,line=1,title=spoofed::all good\\n::stop-commands::x"',
      'spec:',
      '  containers:',
      `    - name: "c\\n\\n<img src=x>[link](https://example.com)"`,
      `      image: ${missingTag}`,
    ]
    file('hostile.yaml', hostile)
    const r = await check(['hostile.yaml', '-o', 'github'], { env: { GITHUB_STEP_SUMMARY: summary } })
    t.equal(r.code, 1, r.stderr)
    const lines = r.stdout.split('\n')
    const stop = lines.findIndex((l) => l.startsWith('::stop-commands::'))
    t.ok(stop > 0, 'the table is set apart')
    const token = lines[stop]!.slice('::stop-commands::'.length)
    t.match(token, /^[0-9a-f]{32}$/, 'with a token nobody can guess')
    const resume = lines.indexOf(`::${token}::`)
    t.ok(resume > stop, 'and commands resume after it')
    const commands = lines.filter((l, i) => l.startsWith('::') && (i < stop || i > resume))
    t.equal(commands.length, 1, 'outside the table, only the one annotation')
    t.match(
      commands[0],
      /^::error file=hostile\.yaml,line=8,col=7,title=pullguard TagNotFound%3A pod default\/p%0A%3A%3Aerror/,
    )
    t.match(
      lines.slice(stop + 1, resume).join('\n'),
      '\n::error file=README.md',
      'the spoofed line is only in the paused table',
    )

    const md = readFileSync(summary, 'utf8')
    const details = md.split('\n').filter((l) => l.startsWith('<details>'))
    t.equal(details.length, 1)
    t.notMatch(details[0], /<img/, 'HTML in a name is text')
    // Outside the one-line HTML of <details> (where Markdown is not read), every bracket is escaped.
    const markdown = md
      .split('\n')
      .filter((l) => !l.startsWith('<details>'))
      .join('\n')
    t.notMatch(markdown, /(?<!\\)\[link|(?<!\\)<img/, 'no image or link made of a name')

    // An input error names the object on one line, whatever its name holds.
    file('hostile-bad.yaml', [
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: "x\\n::error::spoofed"',
      'spec:',
      '  containers: {}',
    ])
    const bad = await check(['hostile-bad.yaml', '-o', 'github'])
    t.equal(bad.code, 2)
    t.equal(bad.stderr.split('\n').length, 2, `one line: ${bad.stderr}`)
    t.notMatch(bad.stderr, /^::/m)
  },
)

t.test("the run's notes reach the job summary and SARIF", async (t) => {
  const summary = join(work, 'warn-summary.md')
  writeFileSync(summary, '')
  file('secrets.yaml', [
    'apiVersion: v1',
    'kind: Pod',
    'metadata: {name: s, namespace: a}',
    'spec:',
    '  imagePullSecrets: [{name: regcred}]',
    '  containers:',
    `    - {name: c, image: "${missingTag}"}`,
  ])
  const r = await check(['secrets.yaml', '-o', 'github'], { env: { GITHUB_STEP_SUMMARY: summary } })
  t.equal(r.code, 1, r.stderr)
  const md = readFileSync(summary, 'utf8')
  t.match(md, /\n> pull secrets are not read without --from-cluster/, 'the notes')
  const sarif = sarifOf(t, await check(['secrets.yaml', '-o', 'sarif']))
  const notes = sarif.runs[0].invocations[0].toolExecutionNotifications
  t.ok(
    notes.some((n: any) => n.level === 'note' && /pull secrets are not read/.test(n.message.text)),
    JSON.stringify(notes),
  )
})
