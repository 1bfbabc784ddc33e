// Short names as CRI-O resolves them with containers-image's shortnames.Resolve: which names are
// short, aliases (the cache file first) with the tag or digest kept, search registries in order,
// enforcing mode refusing an ambiguous list, and a name with nowhere to go.
import t from 'tap'
import {
  ambiguousReason,
  isShortName,
  resolveShortName,
  type ShortNameConfig,
  type ShortNameResolution,
} from '../../src/mirrors/short-names.js'

const FILE = '/etc/containers/registries.conf'
const DROP = '/etc/containers/registries.conf.d/10-aliases.conf'

t.test('which names are short (no registry in the first component)', async (t) => {
  const table: Array<[string, boolean]> = [
    ['nginx', true],
    ['nginx:1.27', true],
    ['team/app:1.0', true],
    ['library/nginx', true],
    [`team/app@sha256:${'a'.repeat(64)}`, true],
    ['docker.io/nginx', false],
    ['quay.io/team/app:1.0', false],
    ['localhost/app', false],
    ['localhost:5000/app', false],
    ['registry:5000/app', false],
    ['my.registry/app', false],
    ['Team/app', true],
  ]
  for (const [input, short] of table) t.equal(isShortName(input), short, input)
})

const show = (r: ShortNameResolution): string =>
  r.kind === 'qualified'
    ? 'qualified'
    : r.kind === 'unresolvable'
      ? `unresolvable: ${r.problem}`
      : `${r.kind} (${r.origin}): ${r.candidates.map((c) => c.canonical).join(', ')}`

const config = (search: string[], aliases: Record<string, string> = {}, origin = FILE): ShortNameConfig => ({
  search,
  searchOrigin: FILE,
  aliases: new Map(Object.entries(aliases).map(([k, v]) => [k, { target: v, origin }])),
})

t.test('resolution, case by case', async (t) => {
  const two = config(['registry.access.redhat.com', 'docker.io'], { app: 'quay.io/team/app', removed: '' }, DROP)
  const digest = `sha256:${'b'.repeat(64)}`
  const table: Array<[string, ShortNameConfig, 'enforcing' | 'disabled', string]> = [
    ['quay.io/team/app:1.0', two, 'enforcing', 'qualified'],
    ['app:1.0', two, 'enforcing', `alias (${DROP}): quay.io/team/app:1.0`],
    ['app', two, 'disabled', `alias (${DROP}): quay.io/team/app:latest`],
    [`app@${digest}`, two, 'enforcing', `alias (${DROP}): quay.io/team/app@${digest}`],
    [
      'team/app:1.0',
      two,
      'enforcing',
      `ambiguous (${FILE}): registry.access.redhat.com/team/app:1.0, docker.io/team/app:1.0`,
    ],
    [
      'team/app:1.0',
      two,
      'disabled',
      `search (${FILE}): registry.access.redhat.com/team/app:1.0, docker.io/team/app:1.0`,
    ],
    [
      'nginx',
      two,
      'disabled',
      `search (${FILE}): registry.access.redhat.com/nginx:latest, docker.io/library/nginx:latest`,
    ],
    [
      'removed:1',
      two,
      'disabled',
      `search (${FILE}): registry.access.redhat.com/removed:1, docker.io/library/removed:1`,
    ],
    ['team/app:1.0', config(['quay.io']), 'enforcing', `search (${FILE}): quay.io/team/app:1.0`],
    [
      'team/app:1.0',
      config([]),
      'disabled',
      `unresolvable: short-name "team/app:1.0" did not resolve to an alias and no unqualified-search registries are defined in "${FILE}"`,
    ],
    [
      'Team/app:1.0',
      config(['quay.io']),
      'disabled',
      'unresolvable: creating reference with unqualified-search registry "quay.io": invalid image reference "quay.io/Team/app:1.0": repository name must be lowercase',
    ],
  ]
  for (const [input, c, mode, want] of table)
    t.equal(show(resolveShortName(input, c, undefined, mode)), want, `${input} (${mode})`)
})

t.test('the aliases cache file wins, and its "" hides the configuration alias', async (t) => {
  const c = config(['quay.io', 'docker.io'], { app: 'quay.io/team/app', tool: 'quay.io/tools/tool' })
  const cache = new Map([
    ['app', { target: 'registry.example.com/team/app', origin: '/var/cache/containers/short-name-aliases.conf' }],
    ['tool', { target: '', origin: '/var/cache/containers/short-name-aliases.conf' }],
  ])
  t.equal(
    show(resolveShortName('app:2', c, cache, 'enforcing')),
    'alias (/var/cache/containers/short-name-aliases.conf): registry.example.com/team/app:2',
  )
  t.equal(
    show(resolveShortName('tool', c, cache, 'enforcing')),
    `ambiguous (${FILE}): quay.io/tool:latest, docker.io/library/tool:latest`,
  )
})

t.test("CRI-O's reason for an ambiguous name names the tag the kubelet adds", async (t) => {
  t.equal(
    ambiguousReason('team/app:1.0'),
    'short name mode is enforcing, but image name team/app:1.0 returns ambiguous list',
  )
  t.equal(
    ambiguousReason('team/app'),
    'short name mode is enforcing, but image name team/app:latest returns ambiguous list',
  )
})
