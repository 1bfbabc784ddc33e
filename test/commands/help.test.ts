// Help is generated from the table that parses the flags: every flag a command accepts is in its
// help with what it means, and every flag its help names is accepted. Booleans take `--flag`,
// `--flag=true|false` and `--flag true|false`, as every Go/Kubernetes CLI; a mistyped flag gets
// the nearest one.
import t from 'tap'
import { AUDIT_HELP } from '../../src/audit/command.js'
import { AUDIT_OPTIONS } from '../../src/audit/config.js'
import { CHECK_HELP } from '../../src/check/command.js'
import { CHECK_OPTIONS } from '../../src/check/config.js'
import { CLUSTER_CLI_OPTIONS } from '../../src/commands/cluster-flags.js'
import { nearest, parseFlagTable, renderHelp, type FlagTable } from '../../src/commands/flag-table.js'
import { DIAGNOSE_HELP } from '../../src/diagnose/command.js'
import { SERVE_HELP } from '../../src/serve/command.js'
import { SERVE_OPTIONS } from '../../src/serve/config.js'
import { runCli } from '../helpers/cli.js'

const commands = [
  [SERVE_HELP, SERVE_OPTIONS],
  [CHECK_HELP, CHECK_OPTIONS],
  [DIAGNOSE_HELP, CLUSTER_CLI_OPTIONS],
  [AUDIT_HELP, AUDIT_OPTIONS],
] as const

for (const [help, table] of commands) {
  t.test(`${help.name}: every flag of its table is in its help, and every flag in its help parses`, async (t) => {
    const text = renderHelp(help, table as FlagTable)
    for (const [name, spec] of Object.entries(table as FlagTable)) {
      t.ok(text.includes(`--${name}`), `--${name} is in the help`)
      t.ok(text.includes(spec.help), `--${name}: its meaning is in the help`)
      if (spec.short !== undefined) t.ok(text.includes(`-${spec.short}, --${name}`), `-${spec.short} is in the help`)
      t.ok(spec.help.length > 10, `--${name} says what it means`)
    }
    const documented = [...text.matchAll(/^\s+(?:-\w, )?--([a-z0-9-]+)/gm)].map((m) => m[1]!)
    t.same(documented.sort(), [...Object.keys(table), 'help'].sort(), 'the help names exactly the table’s flags')
    for (const name of documented.filter((n) => n !== 'help')) {
      const spec = (table as FlagTable)[name]!
      const argv = spec.type === 'boolean' ? [`--${name}`] : [`--${name}`, 'x']
      t.doesNotThrow(() => parseFlagTable(help.name, argv, table as FlagTable, true), `--${name} is accepted`)
    }
    t.match(text, /\nExit codes:\n {2}0 {2}/)
    t.match(text, /\nExamples:\n {2}# .+\n {2}pullguard /)
  })
}

t.test('booleans: --flag, --flag=true|false, --flag true|false; a short boolean', async (t) => {
  const table = {
    'from-cluster': { type: 'boolean', help: 'read the cluster' },
    all: { type: 'boolean', short: 'A', help: 'every namespace' },
    output: { type: 'string', short: 'o', value: 'FORMAT', help: 'the format' },
    file: { type: 'string', short: 'f', multiple: true, value: 'FILE', help: 'files' },
  } as const satisfies FlagTable
  const parse = (...argv: string[]) => parseFlagTable('x', argv, table, true)
  t.same(parse('--from-cluster').values, { 'from-cluster': true })
  t.same(parse('--from-cluster=false').values, { 'from-cluster': false })
  t.same(parse('--from-cluster', 'false', 'pod').values, { 'from-cluster': false })
  t.same(parse('--from-cluster', 'false', 'pod').positionals, ['pod'])
  t.same(parse('--from-cluster', 'pod').positionals, ['pod'], 'a word other than true/false is not its value')
  t.same(parse('-A').values, { all: true })
  t.same(parse('-o', 'json', '-ojson', '-o=yaml').values, { output: 'yaml' }, 'the last wins')
  t.same(parse('-f', 'a', '--file=b', '-fc').values, { file: ['a', 'b', 'c'] })
  t.same(parse('--', '--from-cluster').positionals, ['--from-cluster'], '-- ends the flags')
  t.same(parse('-f', '-').values, { file: ['-'] }, '- is a value (stdin)')
  t.throws(() => parse('--output'), { message: '--output: needs a value (FORMAT)' })
  t.throws(() => parse('--all=maybe'), { message: '--all: takes true or false, not "maybe"' })
  t.throws(() => parse('--ouptut', 'json'), { message: 'x: unknown flag --ouptut (did you mean --output?)' })
  t.throws(() => parse('-z'), { message: 'x: unknown flag -z' })
  t.throws(() => parseFlagTable('x', ['extra'], table, false), { message: 'x: unexpected argument "extra"' })
})

t.test('the nearest name, only when near enough to be a typo', async (t) => {
  const names = ['serve', 'check', 'diagnose', 'audit']
  t.equal(nearest('chek', names), 'check')
  t.equal(nearest('diagnos', names), 'diagnose')
  t.equal(nearest('judge', names), undefined)
  t.equal(nearest('--namespce', ['--namespace', '--name']), '--namespace')
})

t.test('the CLI: --help lists the commands, COMMAND --help explains it, --version', async (t) => {
  const root = await runCli(['--help'])
  t.equal(root.code, 0)
  for (const [help] of commands) t.match(root.stdout, `\n  ${help.name.padEnd(9)} ${help.summary}\n`)
  const check = await runCli(['check', '--help'])
  t.equal(check.code, 0)
  t.match(check.stdout, /^pullguard check: check the images of manifests before they are applied\n/)
  t.match(check.stdout, /--timeout DURATION +each image's budget \(default 8s; env PULLGUARD_TIMEOUT\)/)
  const version = await runCli(['--version'])
  t.match(version.stdout, /^pullguard \d+\.\d+\.\d+\n$/)
  const none = await runCli([])
  t.equal(none.code, 2, 'no command: the help, and a usage error')
})

t.test('--audit-events is a boolean like every other: bare, =false, or its variable', async (t) => {
  const { parseServeConfig } = await import('../../src/serve/config.js')
  t.equal(parseServeConfig(['--audit-interval', '1m', '--audit-events'], {}).audit?.events, true)
  t.equal(parseServeConfig(['--audit-interval', '1m', '--audit-events=false'], {}).audit?.events, false)
  t.equal(parseServeConfig(['--audit-interval', '1m', '--audit-events', 'true'], {}).audit?.events, true)
  t.equal(parseServeConfig(['--audit-interval', '1m'], { PULLGUARD_AUDIT_EVENTS: 'true' }).audit?.events, true)
  t.throws(() => parseServeConfig(['--audit-interval', '1m'], { PULLGUARD_AUDIT_EVENTS: 'yes' }), {
    message: /^PULLGUARD_AUDIT_EVENTS: "yes" is not one of true, false$/,
  })
})
