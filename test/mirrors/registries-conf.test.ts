// CRI-O's registries.conf v2, table by table: prefix matching as containers-image matches it, the
// longest prefix winning, rewrites, mirrors in order with pull-from-mirror, blocked registries, and
// the files it refuses.
import t from 'tap'
import { parseRegistriesConf, pullPlan, type PullPlan } from '../../src/mirrors/registries-conf.js'

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
    ? `blocked by ${plan.rule.prefix}`
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
      ['x.a.example.com/app', ['x.a.example.com/app (insecure)']], // *.a.example.com is longer than *.example.com
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
      '[[registry]]\nlocation = "a.example"\n[[registry]]\nlocation = "a.example"',
      /\[\[registry\]\] 2: prefix a.example is given twice/,
    ],
    ['[[registry]]\nlocation = "a.example"\ninsecure = "yes"', /insecure must be true or false/],
    [
      '[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"',
      /pull-from-mirror must be all, digest-only or tag-only/,
    ],
    ['[[registry]]\nprefix = "*.a.example"\nlocation = "b.example"', /a \*\. prefix cannot be rewritten/],
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
