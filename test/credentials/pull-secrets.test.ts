import t from 'tap'
import { loadFixture } from '../helpers/fixtures.js'
import { loadPullKeyring, type SecretProblem } from '../../src/credentials/pull-secrets.js'
import type { KeyringEntry } from '../../src/credentials/keyring.js'
import type { Lookup, SecretObject, SecretSource } from '../../src/kube/sources.js'
import { credentialIdentity, type Credential } from '../../src/registry/credential.js'

function fixtureSecret(name: string): SecretObject {
  const raw = loadFixture(`api/${name}`) as {
    metadata: { name: string; namespace: string }
    type: string
    data: Record<string, string>
  }
  return { name: raw.metadata.name, namespace: raw.metadata.namespace, type: raw.type, data: raw.data }
}

/** An in-memory SecretSource: answers from a map keyed "namespace/name"; unknown names are 404. */
class MemorySecrets implements SecretSource {
  readonly reads: string[] = []
  constructor(
    private readonly answers: Record<string, Lookup<SecretObject> | (() => Promise<Lookup<SecretObject>>)> = {},
  ) {}
  async getSecret(namespace: string, name: string): Promise<Lookup<SecretObject>> {
    this.reads.push(`${namespace}/${name}`)
    const answer = this.answers[`${namespace}/${name}`]
    if (answer === undefined) return { kind: 'missing' }
    return typeof answer === 'function' ? answer() : answer
  }
}

const b64 = (s: string): string => Buffer.from(s).toString('base64')
const found = (object: SecretObject): Lookup<SecretObject> => ({ kind: 'found', object })
function dockerSecret(name: string, auths: Record<string, unknown>, namespace = 'team-a'): Lookup<SecretObject> {
  return found({
    name,
    namespace,
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64(JSON.stringify({ auths })) },
  })
}
const up = (username: string, password: string): { username: string; password: string } => ({ username, password })
const plain = (credentials: Credential[]): Array<[string, string, string]> =>
  credentials.map((c) => [c.username, c.password, c.label])

t.test('turns the fixture secrets into credentials, labelled by secret and key', async (t) => {
  const source = new MemorySecrets({
    'team-a/regcred': found(fixtureSecret('secret-dockerconfigjson.json')),
    'team-a/legacy-hub': found(fixtureSecret('secret-dockercfg.json')),
    'team-a/app-config': found(fixtureSecret('secret-opaque.json')),
  })
  const ring = await loadPullKeyring(source, 'team-a', ['regcred', 'app-config', 'legacy-hub'])
  t.same(plain(ring.credentialsFor('registry.example.com:5000/team/app')), [
    ['puller', 's3cret-pass', 'secret team-a/regcred (key "registry.example.com:5000")'],
  ])
  t.same(
    plain(ring.credentialsFor('docker.io/library/nginx')),
    [['hubuser', 'hub-pass', 'secret team-a/legacy-hub (key "https://index.docker.io/v1/")']],
    'Docker Hub fallback from a legacy .dockercfg',
  )
  t.same(ring.credentialsFor('quay.io/org/app'), [])
  t.same(ring.loaded, ['regcred', 'legacy-hub'])
  t.same(
    [...ring.registries],
    [
      ['regcred', ['registry.example.com:5000']],
      ['legacy-hub', ['https://index.docker.io/v1/']],
    ],
    'which registries each loaded secret holds (keys, never values)',
  )
  t.same(
    ring.problems.map((p) => [p.secret, p.kind]),
    [['app-config', 'wrong-type']],
  )
  t.match(
    ring.problems[0]?.detail,
    /has type "Opaque"; the kubelet only uses kubernetes.io\/dockerconfigjson and kubernetes.io\/dockercfg/,
  )
  t.equal(ring.incomplete, false)
  t.equal(ring.fatal, undefined)
  t.notMatch(JSON.stringify(ring.problems), /hunter2|s3cret|hub-pass/)
})

// Every Lookup kind, and every way a found secret can be unusable: [name, lookup, kind, detail, incomplete]
const single: Array<[string, Lookup<SecretObject>, SecretProblem['kind'], RegExp, boolean]> = [
  [
    'a missing secret is skipped',
    { kind: 'missing' },
    'missing',
    /team-a\/s does not exist; the kubelet skips it/,
    false,
  ],
  [
    'a forbidden secret makes the answer incomplete',
    { kind: 'forbidden', detail: 'secrets "s" is forbidden' },
    'forbidden',
    /may not read secret team-a\/s .*the kubelet may still use it/,
    true,
  ],
  [
    'an API error makes the answer incomplete',
    { kind: 'error', detail: 'connect ECONNREFUSED' },
    'error',
    /could not be read: connect ECONNREFUSED/,
    true,
  ],
  [
    'an Opaque secret holding .dockerconfigjson is still the wrong type',
    found({ name: 's', namespace: 'team-a', type: 'Opaque', data: { '.dockerconfigjson': b64('{"auths":{}}') } }),
    'wrong-type',
    /type "Opaque"/,
    false,
  ],
  [
    'a dockercfg secret holding only .dockerconfigjson is ignored',
    found({
      name: 's',
      namespace: 'team-a',
      type: 'kubernetes.io/dockercfg',
      data: { '.dockerconfigjson': b64('{"auths":{}}') },
    }),
    'wrong-type',
    /no \.dockercfg data/,
    false,
  ],
  [
    'a dockerconfigjson secret without its key is ignored',
    found({ name: 's', namespace: 'team-a', type: 'kubernetes.io/dockerconfigjson', data: {} }),
    'wrong-type',
    /no \.dockerconfigjson data/,
    false,
  ],
  [
    'a dockerconfigjson secret with empty data is ignored (len 0 in secrets.go)',
    found({
      name: 's',
      namespace: 'team-a',
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': '' },
    }),
    'wrong-type',
    /no \.dockerconfigjson data/,
    false,
  ],
  [
    'a service-account token secret is the wrong type',
    found({ name: 's', namespace: 'team-a', type: 'kubernetes.io/service-account-token', data: { token: b64('x') } }),
    'wrong-type',
    /service-account-token/,
    false,
  ],
  [
    'data that is not base64 does not parse',
    found({
      name: 's',
      namespace: 'team-a',
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': 'not base64!' },
    }),
    'unparseable',
    /\(\.dockerconfigjson\) holds data that is not base64/,
    false,
  ],
  [
    'data that is not JSON does not parse',
    found({
      name: 's',
      namespace: 'team-a',
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': b64('{"auths": {') },
    }),
    'unparseable',
    /does not parse as the kubelet reads it: it is not valid JSON/,
    false,
  ],
  [
    'a .dockercfg that is not an object does not parse',
    found({ name: 's', namespace: 'team-a', type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64('[]') } }),
    'unparseable',
    /\(\.dockercfg\) does not parse .* is an array/,
    false,
  ],
  [
    'an auth without ":" does not parse',
    dockerSecret('s', { 'quay.io': { auth: b64('hunter2') } }),
    'unparseable',
    /auth field of entry "quay.io" is not base64 of user:password/,
    false,
  ],
]

for (const [name, lookup, kind, detail, incomplete] of single) {
  t.test(name, async (t) => {
    const ring = await loadPullKeyring(new MemorySecrets({ 'team-a/s': lookup }), 'team-a', ['s'])
    t.same(
      ring.problems.map((p) => [p.secret, p.kind]),
      [['s', kind]],
    )
    t.match(ring.problems[0]?.detail, detail)
    t.notMatch(ring.problems[0]?.detail, /hunter2|aHVudGVyMg/)
    t.equal(ring.incomplete, incomplete)
    t.equal(ring.fatal, kind === 'unparseable' ? ring.problems[0] : undefined)
    t.same(ring.loaded, [])
    t.same(ring.credentialsFor('quay.io/x'), [])
  })
}

t.test('the first secret that does not parse is fatal; the others still load, problems in pod order', async (t) => {
  const source = new MemorySecrets({
    'team-a/good': dockerSecret('good', { 'quay.io': up('u', 'p') }),
    'team-a/bad-json': found({
      name: 'bad-json',
      namespace: 'team-a',
      type: 'kubernetes.io/dockercfg',
      data: { '.dockercfg': b64('{') },
    }),
    'team-a/bad-auth': dockerSecret('bad-auth', { 'quay.io': { auth: b64('nocolon') } }),
    'team-a/denied': { kind: 'forbidden', detail: 'forbidden' },
  })
  const ring = await loadPullKeyring(source, 'team-a', ['missing', 'bad-auth', 'good', 'denied', 'bad-json'])
  t.same(
    ring.problems.map((p) => [p.secret, p.kind]),
    [
      ['missing', 'missing'],
      ['bad-auth', 'unparseable'],
      ['denied', 'forbidden'],
      ['bad-json', 'unparseable'],
    ],
  )
  t.equal(ring.fatal?.secret, 'bad-auth')
  t.equal(ring.incomplete, true)
  t.same(ring.loaded, ['good'])
  t.same(plain(ring.credentialsFor('quay.io/x')), [['u', 'p', 'secret team-a/good (key "quay.io")']])
})

t.test('several secrets: more specific keys first, the same KEY in pod order', async (t) => {
  const source = new MemorySecrets({
    'team-a/one': dockerSecret('one', { 'quay.io': up('one-host', 'p'), 'quay.io/org': up('one-org', 'p') }),
    'team-a/two': dockerSecret('two', {
      'https://quay.io/v2/': up('two-host', 'p'),
      'quay.io/org/app': up('two-repo', 'p'),
    }),
    'team-a/three': found({
      name: 'three',
      namespace: 'team-a',
      type: 'kubernetes.io/dockercfg',
      data: { '.dockercfg': b64(JSON.stringify({ 'http://quay.io': up('three-host', 'p') })) },
    }),
  })
  const ring = await loadPullKeyring(source, 'team-a', ['two', 'one', 'three'])
  t.same(
    ring.credentialsFor('quay.io/org/app').map((c) => c.username),
    ['two-repo', 'one-org', 'two-host', 'one-host', 'three-host'],
  )
  t.same(
    ring.credentialsFor('quay.io/other/app').map((c) => c.username),
    ['two-host', 'one-host', 'three-host'],
  )
  t.same(ring.loaded, ['two', 'one', 'three'])
})

t.test('a secret listed twice is read once and its credentials are tried twice, as the kubelet does', async (t) => {
  const source = new MemorySecrets({
    'team-a/a': dockerSecret('a', { 'quay.io': up('a', 'p') }),
    'team-a/b': dockerSecret('b', { 'quay.io': up('b', 'p') }),
  })
  const ring = await loadPullKeyring(source, 'team-a', ['a', 'b', 'a', 'gone', 'gone'])
  t.same(source.reads, ['team-a/a', 'team-a/b', 'team-a/gone'])
  t.same(
    ring.credentialsFor('quay.io/x').map((c) => c.username),
    ['a', 'b', 'a'],
  )
  t.same(ring.loaded, ['a', 'b'])
  t.same(
    ring.problems.map((p) => p.secret),
    ['gone'],
  )
})

t.test('identical credentials from different secrets are all kept', async (t) => {
  const source = new MemorySecrets({
    'team-a/a': dockerSecret('a', { 'quay.io': up('same', 'same') }),
    'team-a/b': dockerSecret('b', { 'quay.io': up('same', 'same') }),
  })
  const ring = await loadPullKeyring(source, 'team-a', ['a', 'b'])
  t.same(
    ring.credentialsFor('quay.io/x').map((c) => c.label),
    ['secret team-a/a (key "quay.io")', 'secret team-a/b (key "quay.io")'],
  )
})

t.test('empty names are skipped without a read', async (t) => {
  const source = new MemorySecrets({ 'team-a/a': dockerSecret('a', { 'quay.io': up('a', 'p') }) })
  const ring = await loadPullKeyring(source, 'team-a', ['', 'a', ''])
  t.same(source.reads, ['team-a/a'])
  t.same(ring.problems, [])
  t.same(ring.loaded, ['a'])
})

t.test('no secrets: no credentials and nothing to report', async (t) => {
  const ring = await loadPullKeyring(new MemorySecrets(), 'team-a', [])
  t.same(ring.credentialsFor('docker.io/library/nginx'), [])
  t.same([ring.problems, ring.loaded, ring.incomplete, ring.fatal], [[], [], false, undefined])
})

t.test('reads in parallel and keeps pod order when answers arrive out of order', async (t) => {
  const release: Array<() => void> = []
  const later = (lookup: Lookup<SecretObject>) => () =>
    new Promise<Lookup<SecretObject>>((resolve) => release.push(() => resolve(lookup)))
  const source = new MemorySecrets({
    'team-a/first': later(dockerSecret('first', { 'quay.io': up('first', 'p') })),
    'team-a/second': later(dockerSecret('second', { 'quay.io': up('second', 'p') })),
  })
  const pending = loadPullKeyring(source, 'team-a', ['first', 'second'])
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(release.length, 2, 'both reads started before either answered')
  release[1]?.()
  release[0]?.()
  const ring = await pending
  t.same(
    ring.credentialsFor('quay.io/x').map((c) => c.username),
    ['first', 'second'],
  )
  t.same(ring.loaded, ['first', 'second'])
})

t.test('keeps at most 8 reads in flight', async (t) => {
  let inFlight = 0
  let most = 0
  const source: SecretSource = {
    getSecret: async (namespace, name) => {
      most = Math.max(most, ++inFlight)
      await new Promise((resolve) => setTimeout(resolve, 1))
      inFlight--
      return dockerSecret(name, { 'quay.io': up(name, 'p') }, namespace)
    },
  }
  const names = Array.from({ length: 30 }, (_, i) => `s${i}`)
  const ring = await loadPullKeyring(source, 'team-a', names)
  t.equal(most, 8)
  t.same(ring.loaded, names)
  t.same(
    ring.credentialsFor('quay.io/x').map((c) => c.username),
    names,
  )
})

t.test('reads only from the pod namespace', async (t) => {
  const source = new MemorySecrets({
    'team-b/regcred': dockerSecret('regcred', { 'quay.io': up('b', 'p') }, 'team-b'),
  })
  const ring = await loadPullKeyring(source, 'team-a', ['regcred'])
  t.same(source.reads, ['team-a/regcred'])
  t.same(ring.credentialsFor('quay.io/x'), [])
  t.same(
    ring.problems.map((p) => p.kind),
    ['missing'],
  )
})

t.test("node credentials come after the pod's, each keyring with its own Docker Hub fallback", async (t) => {
  const source = new MemorySecrets({
    'team-a/pod': dockerSecret('pod', {
      'quay.io': up('pod-quay', 'p'),
      'https://index.docker.io/v1/': up('pod-hub', 'p'),
    }),
  })
  const node: KeyringEntry[] = [
    { key: 'docker.io', username: 'node-docker', password: 'p', label: 'node config (key "docker.io")' },
    { key: 'quay.io/org', username: 'node-org', password: 'p', label: 'node config (key "quay.io/org")' },
    { key: 'index.docker.io', username: 'node-hub', password: 'p', label: 'node config (key "index.docker.io")' },
  ]
  const ring = await loadPullKeyring(source, 'team-a', ['pod'], { extraEntries: node })
  t.same(
    ring.credentialsFor('quay.io/org/app').map((c) => c.username),
    ['pod-quay', 'node-org'],
    'a more specific node key still comes after the pod',
  )
  t.same(
    ring.credentialsFor('docker.io/library/nginx').map((c) => c.username),
    ['pod-hub', 'node-docker'],
  )
  const nodeOnly = await loadPullKeyring(new MemorySecrets(), 'team-a', ['gone'], { extraEntries: node })
  t.same(
    nodeOnly.credentialsFor('docker.io/library/nginx').map((c) => c.username),
    ['node-docker'],
  )
  t.same(nodeOnly.credentialsFor('gcr.io/x'), [])
})

t.test('returns the same Credential objects on every call', async (t) => {
  const ring = await loadPullKeyring(
    new MemorySecrets({ 'team-a/a': dockerSecret('a', { 'quay.io': up('a', 'p') }) }),
    'team-a',
    ['a'],
  )
  const [first] = ring.credentialsFor('quay.io/x')
  const [again] = ring.credentialsFor('quay.io/y')
  t.ok(first !== undefined && first === again)
  t.ok(Object.isFrozen(first))
})

t.test(
  'copies of one secret (one data object) give credentials of their own, labelled by their own secret',
  async (t) => {
    const data = Object.freeze({
      '.dockerconfigjson': b64(JSON.stringify({ auths: { 'quay.io': up('robot', 'shared-token') } })),
    })
    const secret = (namespace: string): Lookup<SecretObject> =>
      found(Object.freeze({ name: 'copied', namespace, type: 'kubernetes.io/dockerconfigjson', data }))
    const source = new MemorySecrets({ 'team-a/copied': secret('team-a'), 'team-b/copied': secret('team-b') })
    const [a] = (await loadPullKeyring(source, 'team-a', ['copied'])).credentialsFor('quay.io/x')
    const [b] = (await loadPullKeyring(source, 'team-b', ['copied'])).credentialsFor('quay.io/x')
    t.same(plain([a!, b!]), [
      ['robot', 'shared-token', 'secret team-a/copied (key "quay.io")'],
      ['robot', 'shared-token', 'secret team-b/copied (key "quay.io")'],
    ])
    t.not(a, b)
    t.equal(credentialIdentity(a!), credentialIdentity(b!), 'the same value: the same identity')
    const other = new MemorySecrets({
      'team-c/copied': dockerSecret('copied', { 'quay.io': up('robot', 'another-token') }, 'team-c'),
    })
    const [c] = (await loadPullKeyring(other, 'team-c', ['copied'])).credentialsFor('quay.io/x')
    t.not(credentialIdentity(c!), credentialIdentity(a!), 'another value: another identity')
  },
)

t.test('an entry without a username is still a credential the kubelet passes on (identitytoken ignored)', async (t) => {
  const ring = await loadPullKeyring(
    new MemorySecrets({ 'team-a/a': dockerSecret('a', { 'quay.io': { identitytoken: 'tok' } }) }),
    'team-a',
    ['a'],
  )
  t.same(plain(ring.credentialsFor('quay.io/x')), [['', '', 'secret team-a/a (key "quay.io")']])
})

t.test('labels never carry a user:password written into a key', async (t) => {
  const ring = await loadPullKeyring(
    new MemorySecrets({ 'team-a/a': dockerSecret('a', { 'me:hunter2@quay.io': up('u', 'p') }) }),
    'team-a',
    ['a'],
  )
  t.same(
    ring.credentialsFor('quay.io/x').map((c) => c.label),
    ['secret team-a/a (key "<redacted>@quay.io")'],
  )
})

t.test('a source that throws is an error, not a crash', async (t) => {
  const source: SecretSource = {
    getSecret: async () => {
      throw new Error('boom')
    },
  }
  const ring = await loadPullKeyring(source, 'team-a', ['a'])
  t.same(
    ring.problems.map((p) => [p.kind, p.detail]),
    [['error', 'secret team-a/a could not be read: boom']],
  )
  t.equal(ring.incomplete, true)
})

t.test('passes the signal to the source and rejects once it is aborted', async (t) => {
  const controller = new AbortController()
  let seen: AbortSignal | undefined
  const source: SecretSource = {
    getSecret: async (_namespace, _name, signal) => {
      seen = signal
      controller.abort(new Error('review deadline'))
      throw signal?.reason
    },
  }
  await t.rejects(loadPullKeyring(source, 'team-a', ['a'], { signal: controller.signal }), {
    message: 'review deadline',
  })
  t.equal(seen, controller.signal)
})
