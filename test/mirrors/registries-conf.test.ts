// CRI-O's registries.conf v2, table by table: prefix matching as containers-image matches it, the
// longest prefix winning, rewrites, mirrors in order with pull-from-mirror, blocked registries, and
// the files it refuses.
import t from 'tap'
import {
  mergeRegistriesConf,
  parseRegistriesConf,
  parseRegistriesConfFile,
  pullPlan,
  type PullPlan,
} from '../../src/mirrors/registries-conf.js'

const FILE = '/etc/containers/registries.conf'
const CONF = `
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
  [[registry.mirror]]
  location = "mirror.internal:5000/hub"
  [[registry.mirror]]
  location = "digest-cache.internal"
  pull-from-mirror = "digest-only"
  [[registry.mirror]]
  location = "tag-cache.internal"
  pull-from-mirror = "tag-only"
  insecure = true

[[registry]]
prefix = "docker.io/library/busybox"
location = "internal.example/busybox"

[[registry]]
prefix = "quay.io/evil"
blocked = true

[[registry]]
prefix = "*.untrusted.example"
blocked = true

[[registry]]
location = "registry.lab:5000"
insecure = true
`
const rules = parseRegistriesConf(FILE, CONF)
const where = (plan: PullPlan): string[] | string =>
  plan.blocked
    ? `blocked by ${plan.rule.prefix}${plan.problem === undefined ? '' : `: ${plan.problem.replace(/ \(containers-image.*$/, '')}`}`
    : plan.sources.map((s) => `${s.location}${s.insecure ? ' (insecure)' : ''}${s.mirror ? ' mirror' : ''}`)

t.test('where each reference is pulled from', async (t) => {
  const table: Array<[string, boolean, string[] | string]> = [
    [
      'docker.io/library/nginx',
      false,
      [
        'mirror.internal:5000/hub/library/nginx mirror',
        'tag-cache.internal/library/nginx (insecure) mirror',
        'docker.io/library/nginx',
      ],
    ],
    [
      'docker.io/library/nginx',
      true,
      [
        'mirror.internal:5000/hub/library/nginx mirror',
        'digest-cache.internal/library/nginx mirror',
        'docker.io/library/nginx',
      ],
    ],
    ['docker.io/library/busybox', false, ['internal.example/busybox']],
    ['docker.io/library/busybox/extra', false, ['internal.example/busybox/extra']],
    [
      'docker.io/library/busyboxer',
      false,
      [
        'mirror.internal:5000/hub/library/busyboxer mirror',
        'tag-cache.internal/library/busyboxer (insecure) mirror',
        'docker.io/library/busyboxer',
      ],
    ],
    ['quay.io/evil', false, 'blocked by quay.io/evil'],
    ['quay.io/evil/tool', true, 'blocked by quay.io/evil'],
    ['quay.io/evilcorp/tool', false, ['quay.io/evilcorp/tool']],
    ['cdn.untrusted.example/app', false, 'blocked by *.untrusted.example'],
    ['untrusted.example/app', false, ['untrusted.example/app']],
    ['registry.lab:5000/team/app', false, ['registry.lab:5000/team/app (insecure)']],
    ['ghcr.io/org/app', false, ['ghcr.io/org/app']],
  ]
  for (const [name, byDigest, want] of table)
    t.same(where(pullPlan(rules, name, byDigest)), want, `${name}${byDigest ? '@digest' : ':tag'}`)
})

t.test(
  'wildcards as containers-image: the longest prefix as written wins, the first on a tie; a port or path may follow',
  async (t) => {
    const r = parseRegistriesConf(
      FILE,
      [
        '[[registry]]',
        'prefix = "*.example.com"',
        'blocked = true',
        '[[registry]]',
        'prefix = "foo.example.com"',
        'location = "foo.example.com"',
        '[[registry]]',
        'prefix = "*.a.example.com"',
        'location = "*.a.example.com"',
        'insecure = true',
        '[[registry]]',
        'prefix = "*.b.example.com"',
        'blocked = true',
      ].join('\n'),
    )
    const table: Array<[string, string[] | string]> = [
      ['foo.example.com/app', ['foo.example.com/app']], // 15 characters each: the first in the file
      ['bar.example.com/app', 'blocked by *.example.com'],
      ['bar.example.com:5000/app', 'blocked by *.example.com'],
      // *.a.example.com is longer than *.example.com; its location is no name to rewrite to, so every pull under it fails
      [
        'x.a.example.com/app',
        'blocked by *.a.example.com: rewriting x.a.example.com/app to *.a.example.com/app gives no valid image name',
      ],
      ['x.b.example.com/app', 'blocked by *.b.example.com'],
      ['example.com/app', ['example.com/app']],
      ['other.org/x.example.com/app', ['other.org/x.example.com/app']], // only in the host part
      ['bar.example.comx/app', ['bar.example.comx/app']],
    ]
    for (const [name, want] of table) t.same(where(pullPlan(r, name, false)), want, name)
    const mirrored = parseRegistriesConf(
      FILE,
      '[[registry]]\nprefix = "*.cdn.example"\n[[registry.mirror]]\nlocation = "cache.internal/cdn"',
    )
    t.same(
      where(
        pullPlan(
          parseRegistriesConf(FILE, '[[registry]]\nprefix = "*.cdn.example"\nlocation = "cdn.internal/x"'),
          'eu.cdn.example/team/app',
          false,
        ),
      ),
      ['cdn.internal/x/team/app'],
      'a *. rule with a location rewrites what follows the host there',
    )
    t.same(
      where(pullPlan(mirrored, 'eu.cdn.example/team/app', false)),
      ['cache.internal/cdn/team/app mirror', 'eu.cdn.example/team/app'],
      "a *. rule's mirror gets its location and what follows the host; the rule itself keeps the reference",
    )
  },
)

t.test('mirror-by-digest-only (deprecated) makes every mirror digest-only', async (t) => {
  const r = parseRegistriesConf(
    FILE,
    '[[registry]]\nlocation = "r.example"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.example"',
  )
  t.same(where(pullPlan(r, 'r.example/a', false)), ['r.example/a'])
  t.same(where(pullPlan(r, 'r.example/a', true)), ['m.example/a mirror', 'r.example/a'])
})

t.test('files it refuses, each naming the file and the table', async (t) => {
  const table: Array<[string, RegExp]> = [
    ['[[registry]]\nprefix = ', /registries\.conf: /],
    ['[registries.search]\nregistries = ["docker.io"]', /version 1 format/],
    ['[[registry]]\nblocked = true', /\[\[registry\]\] 1: needs a prefix or a location/],
    ['[[registry]]\nprefix = "a.example"', /\[\[registry\]\] 1: needs a location/],
    [
      '[[registry]]\nlocation = "a.example"\n[[registry]]\nprefix = "b.example"\nlocation = "a.example"\ninsecure = true',
      /\[\[registry\]\] 2: registry a.example is defined more than once with conflicting insecure settings/,
    ],
    ['[[registry]]\nlocation = "https://a.example"', /URI schemes are not supported/],
    ['[[registry]]\nprefix = "*.a.example:5000"', /wildcard prefix must be in the form \*\.example\.com/],
    ['[[registry]]\nlocation = "a.example"\npull-from-mirror = "all"', /must not be set for a non-mirror registry/],
    ['unqualified-search-registries = ["quay.io/team"]', /invalid unqualified-search-registries entry "quay.io\/team"/],
    ['unqualified-search-registries = "quay.io"', /must be a list of registries/],
    ['short-name-mode = "strict"', /invalid short-name-mode "strict"/],
    ['[aliases]\n"quay.io/app" = "quay.io/team/app"', /invalid short name "quay.io\/app": must not contain registry/],
    ['[aliases]\n"app:1" = "quay.io/team/app"', /invalid short name "app:1": must not contain tag/],
    ['[aliases]\n"app" = "team/app"', /invalid alias "team\/app": must contain registry and repository/],
    ['[aliases]\n"app" = "quay.io/team/app:1.0"', /invalid alias "quay.io\/team\/app:1.0": must not contain tag/],
    ['[[registry]]\nlocation = "a.example"\ninsecure = "yes"', /insecure must be true or false/],
    [
      '[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"',
      /pull-from-mirror must be all, digest-only or tag-only/,
    ],
  ]
  for (const [text, problem] of table) {
    t.throws(
      () => parseRegistriesConf(FILE, text),
      { code: 'RegistriesConfInvalid', file: FILE, message: problem },
      text,
    )
  }
})

t.test('no [[registry]] at all: every reference pulled as written', async (t) => {
  t.same(
    where(
      pullPlan(
        parseRegistriesConf(FILE, 'unqualified-search-registries = ["docker.io"]'),
        'docker.io/library/nginx',
        false,
      ),
    ),
    ['docker.io/library/nginx'],
  )
})

t.test(
  'a prefix given twice in one file: the first table counts (containers-image ignores the later ones)',
  async (t) => {
    const r = parseRegistriesConf(
      FILE,
      '[[registry]]\nprefix = "a.example"\nlocation = "one.example"\n[[registry]]\nprefix = "a.example"\nlocation = "two.example"',
    )
    t.same(where(pullPlan(r, 'a.example/app', false)), ['one.example/app'])
  },
)

t.test('drop-ins merge as containers-image merges them', async (t) => {
  const main = parseRegistriesConfFile(
    FILE,
    `unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
[aliases]
"app" = "quay.io/team/app"
"tool" = "quay.io/tools/tool"
"old" = "quay.io/team/old"
[[registry]]
location = "quay.io"
[[registry.mirror]]
location = "mirror.internal/quay"`,
  )
  const d1 = parseRegistriesConfFile(
    '/etc/containers/registries.conf.d/01-site.conf',
    `unqualified-search-registries = ["quay.io"]
[aliases]
"app" = "registry.example.com/team/app"
"old" = ""
[[registry]]
location = "quay.io"
blocked = true`,
  )
  const d2 = parseRegistriesConfFile(
    '/etc/containers/registries.conf.d/02-more.conf',
    '[aliases]\n"busybox" = "docker.io/busybox"',
  )
  const merged = mergeRegistriesConf([main, d1, d2])
  t.same(merged.search, ['quay.io'], 'a drop-in that sets the list replaces it')
  t.equal(merged.searchOrigin, d1.file)
  t.same(
    Object.fromEntries([...merged.aliases].map(([k, v]) => [k, `${v.target} (${v.origin})`])),
    {
      app: 'registry.example.com/team/app (/etc/containers/registries.conf.d/01-site.conf)',
      tool: `quay.io/tools/tool (${FILE})`,
      old: ' (/etc/containers/registries.conf.d/01-site.conf)',
      busybox: 'docker.io/library/busybox (/etc/containers/registries.conf.d/02-more.conf)',
    },
    'aliases merge name by name; "" removes; targets are normalized',
  )
  const blocked = pullPlan(merged.rules, 'quay.io/team/app', false)
  t.ok(blocked.blocked, "a drop-in's table replaces the main file's with the same prefix")
  t.equal(blocked.rule?.file, d1.file, 'and says which file blocks it')
  const keep = mergeRegistriesConf([main, parseRegistriesConfFile('/d/03.conf', '# nothing about search')])
  t.same(keep.search, ['registry.access.redhat.com', 'docker.io'], 'a drop-in without the key keeps the list')
  t.equal(keep.searchOrigin, FILE)
  t.same(
    mergeRegistriesConf([main, parseRegistriesConfFile('/d/04.conf', 'unqualified-search-registries = []')]).search,
    [],
    '[] empties it',
  )
  t.equal(
    mergeRegistriesConf([parseRegistriesConfFile(FILE, '')]).searchOrigin,
    FILE,
    'the main file is the origin even when it sets none',
  )
})
