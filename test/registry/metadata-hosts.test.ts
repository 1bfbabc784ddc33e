// The metadata deny-list: every spelling of a metadata or link-local address is refused, ordinary
// and private registries are not; the DNS guard refuses names that resolve there.
import t from 'tap'
import { metadataAddressProblem, metadataHostProblem } from '../../src/registry/metadata-hosts.js'
import { metadataGuardedLookup } from '../../src/registry/transport.js'
import { METADATA_ADDRESS_CODE } from '../../src/registry/transport-error.js'

const refused: Array<[string, RegExp]> = [
  ['169.254.169.254', /169\.254\.169\.254 is a link-local address/],
  ['169.254.169.254:80', /169\.254\.169\.254/],
  ['169.254.170.2', /link-local/], // ECS task metadata
  ['169.254.0.1:5000', /link-local/],
  ['2852039166', /169\.254\.169\.254/], // decimal: resolvers accept it
  ['0xa9fea9fe', /169\.254\.169\.254/],
  ['0251.0376.0251.0376', /169\.254\.169\.254/],
  ['169.254.43518', /169\.254\.169\.254/],
  ['[fd00:ec2::254]', /AWS instance metadata/],
  ['[fd00:ec2::254]:5000', /AWS instance metadata/],
  ['[FD00:0EC2:0000:0000:0000:0000:0000:0254]', /AWS instance metadata/],
  ['[::ffff:169.254.169.254]', /169\.254\.169\.254/],
  ['[::ffff:a9fe:a9fe]:443', /169\.254\.169\.254/],
  ['[64:ff9b::169.254.169.254]', /169\.254\.169\.254/],
  ['[fe80::1]', /fe80::\/10/],
  ['100.100.100.200', /Alibaba Cloud/],
  ['metadata.google.internal', /cloud metadata service/],
  ['METADATA.google.internal.', /cloud metadata service/],
  ['metadata.google.internal:80', /cloud metadata service/],
]
for (const [host, problem] of refused) t.match(metadataHostProblem(host), problem, `refused: ${host}`)

const allowed = [
  'registry.example.com',
  'registry.example.com:5000',
  '10.0.0.5:5000',
  '192.168.1.10',
  '172.16.0.1:443',
  '127.0.0.1:5000',
  'localhost:5000',
  '[::1]:5000',
  '[fd00::1]:5000',
  'registry-1.docker.io',
  '169.254.example.com',
  'metadata.google.internal.example.com',
  'metadata',
  '100.64.0.1',
  '100.100.100.201',
  '170.254.169.254',
  '[2001:db8::169:254]',
]
for (const host of allowed) t.equal(metadataHostProblem(host), undefined, `allowed: ${host}`)

t.test('addresses as DNS returns them', async (t) => {
  t.match(metadataAddressProblem('169.254.169.254'), /link-local/)
  t.match(metadataAddressProblem('fd00:ec2::254'), /AWS/)
  t.match(metadataAddressProblem('::ffff:169.254.169.254'), /169\.254/)
  t.match(metadataAddressProblem('fe80::1%eth0'), /fe80/)
  t.equal(metadataAddressProblem('10.0.0.1'), undefined)
  t.equal(metadataAddressProblem('2001:db8::1'), undefined)
})

t.test('the DNS guard: a name that resolves to a metadata address gets no connection', async (t) => {
  const answers: Record<string, Array<{ address: string; family: number }>> = {
    'evil.example': [
      { address: '203.0.113.7', family: 4 },
      { address: '169.254.169.254', family: 4 },
    ],
    'v6.example': [{ address: 'fd00:ec2::254', family: 6 }],
    'fine.example': [{ address: '10.1.2.3', family: 4 }],
  }
  const lookup = metadataGuardedLookup((hostname, options, cb) => {
    const all = answers[hostname] ?? []
    if (options.all === true) cb(null, all)
    else cb(null, all[0]!.address, all[0]!.family)
  })
  const ask = (hostname: string, all: boolean): Promise<{ err: NodeJS.ErrnoException | null; address: unknown }> =>
    new Promise((resolve) => lookup(hostname, { all }, (err, address) => resolve({ err, address })))
  t.match(
    (await ask('evil.example', true)).err,
    { code: METADATA_ADDRESS_CODE, message: /evil\.example resolves to 169\.254\.169\.254/ },
    'any of the addresses',
  )
  t.match((await ask('v6.example', false)).err, { code: METADATA_ADDRESS_CODE })
  t.same(await ask('fine.example', true), { err: null, address: answers['fine.example'] })
  t.same(await ask('fine.example', false), { err: null, address: '10.1.2.3' })
})
