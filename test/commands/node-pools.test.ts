// --node-pools: the pool file read and checked at start-up like the flags it stands for; a pool
// without the file is the one the flags describe; equal files are one node side.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { NO_NODE_FILES } from '../helpers/pools.js'
import { DEFAULT_POOL, nodePools, type FlagNodes } from '../../src/commands/node-pools.js'
import { pullSettings } from '../../src/commands/pull-flags.js'

const flags: FlagNodes = {
  node: NO_NODE_FILES,
  kubelet: { verificationPolicy: 'NeverVerifyPreloadedImages', allowlist: [] },
  platforms: [],
  given: [],
}

const dirs: string[] = []
t.teardown(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function poolFile(text: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pullguard-pools-'))
  dirs.push(dir)
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), body)
  }
  const path = join(dir, 'pools.yaml')
  writeFileSync(path, text)
  return path
}

t.test('without the file: one pool, the flags', async (t) => {
  const pools = nodePools({ value: undefined, source: '--node-pools' }, flags, {})
  t.same(
    pools.map((p) => [p.name, p.nodeLabels, p.nodeKey]),
    [[DEFAULT_POOL, {}, 'flags']],
  )
})

t.test('a pool file with labels, taints, runtime, platforms, kubelet policy and files', async (t) => {
  const path = poolFile(
    `pools:
- name: gpu
  nodeLabels: {pool: gpu}
  taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
  runtime: containerd://2.1.4
  platforms: [linux/amd64]
  imagePullCredentialsVerificationPolicy: NeverVerifyAllowlistedImages
  preloadedImagesVerificationAllowlist: [reg.io/base/*]
  containerdHostsDir: gpu/certs.d
  nodeDockerConfig: gpu/config.json
- name: gpu-b
  nodeLabels: {pool: gpu-b}
  containerdHostsDir: gpu/certs.d
  nodeDockerConfig: gpu/config.json
- name: general
  fromFlags: true
`,
    {
      'gpu/certs.d/mirror.example/hosts.toml': 'server = "https://mirror.example"\n',
      'gpu/config.json': '{"auths":{}}',
    },
  )
  const pools = nodePools({ value: path, source: '--node-pools' }, flags, {})
  t.same(
    pools.map((p) => p.name),
    ['gpu', 'gpu-b', 'general'],
  )
  const gpu = pools[0]!
  t.same(gpu.taints, [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }])
  t.equal(gpu.runtime, 'containerd://2.1.4')
  t.same(gpu.platforms, [{ os: 'linux', architecture: 'amd64' }])
  t.same(gpu.kubelet, { verificationPolicy: 'NeverVerifyAllowlistedImages', allowlist: ['reg.io/base/*'] })
  t.same(gpu.node.mirrors, { kind: 'containerd', dir: join(path, '..', 'gpu/certs.d') }, 'paths relative to the file')
  t.equal(gpu.node.nodeDockerConfigPath, join(path, '..', 'gpu/config.json'))
  t.equal(gpu.nodeKey, pools[1]!.nodeKey, 'equal files: one node side')
  t.equal(pools[2]!.nodeKey, 'flags')
  t.equal(pools[2]!.kubelet.verificationPolicy, 'NeverVerifyPreloadedImages')
})

t.test('what the file may not say', async (t) => {
  const table: Array<[string, RegExp]> = [
    ['pool: []', /expected a `pools:` list/],
    ['pools: []', /`pools` is empty/],
    ['pools:\n- nodeLabels: {a: b}', /pools\[0\]\.name: a pool needs a name/],
    ['pools:\n- name: a\n  nodeLabels: {a: b}\n- name: a\n  nodeLabels: {a: c}', /pool "a" is given twice/],
    ['pools:\n- name: a\n  nodeLabel: {a: b}', /pools\[0\] \(a\): unknown key "nodeLabel"/],
    ['pools:\n- name: a\n  nodeLabels: {a: 1}', /the value of "a" must be a string/],
    [
      'pools:\n- name: a\n  taints: [{key: x, effect: Never}]',
      /effect must be NoSchedule, PreferNoSchedule or NoExecute/,
    ],
    ['pools:\n- name: a\n  runtime: containerd-2.1', /expected a runtime as nodes report it/],
    ['pools:\n- name: a\n  platforms: [linux]', /invalid platform "linux"/],
    ['pools:\n- name: a\n  imagePullCredentialsVerificationPolicy: Sometimes', /expected one of NeverVerify, /],
    [
      'pools:\n- name: a\n  preloadedImagesVerificationAllowlist: [reg.io/*]',
      /only with the verification policy NeverVerifyAllowlistedImages/,
    ],
    [
      'pools:\n- name: a\n  imagePullCredentialsVerificationPolicy: NeverVerifyAllowlistedImages\n  preloadedImagesVerificationAllowlist: [reg.io/app:1]',
      /neither tag nor digest/,
    ],
    [
      'pools:\n- name: a\n  fromFlags: true\n- name: b\n  fromFlags: true',
      /only one pool can take its node files from the flags/,
    ],
    ['pools:\n- name: a\n  fromFlags: true\n  containerdHostsDir: /x', /takes its node files from the command/],
    [
      'pools:\n- name: a\n- name: b\n  nodeLabels: {x: y}',
      /pools\[0\] \(a\): has no nodeLabels, so it takes every node: only the last pool may/,
    ],
    ['pools:\n- name: a\n  containerdHostsDir: /does/not/exist', /does\/not\/exist/],
    [
      'pools:\n- name: a\n  runtime: cri-o://1.33.2\n  containerdHostsDir: certs.d',
      /is cri-o, but the pool's files are containerd's/,
    ],
  ]
  for (const [text, want] of table) {
    const path = poolFile(text, { 'certs.d/x/hosts.toml': 'server = "https://x"\n' })
    t.throws(() => nodePools({ value: path, source: '--node-pools' }, flags, {}), { message: want }, text)
  }
  t.throws(() => nodePools({ value: '/no/such/pools.yaml', source: '--node-pools' }, flags, {}), {
    message: /^--node-pools: cannot read \/no\/such\/pools\.yaml: ENOENT$/,
  })
})

t.test('the kubelet flags and --platform speak for the fromFlags pool, and are refused without one', async (t) => {
  const withFlags: FlagNodes = {
    ...flags,
    kubelet: { verificationPolicy: 'AlwaysVerify', allowlist: [] },
    platforms: [{ os: 'linux', architecture: 'arm64' }],
    given: ['--image-pull-credentials-verification-policy', '--platform'],
  }
  const inherit = poolFile('pools:\n- {name: gpu, nodeLabels: {pool: gpu}}\n- {name: rest, fromFlags: true}\n')
  const pools = nodePools({ value: inherit, source: '--node-pools' }, withFlags, {})
  t.same(
    pools.map((p) => [p.name, p.kubelet.verificationPolicy, p.platforms]),
    [
      ['gpu', 'NeverVerifyPreloadedImages', []],
      ['rest', 'AlwaysVerify', [{ os: 'linux', architecture: 'arm64' }]],
    ],
  )
  const own = poolFile('pools:\n- {name: rest, fromFlags: true, imagePullCredentialsVerificationPolicy: NeverVerify}\n')
  t.equal(
    nodePools({ value: own, source: '--node-pools' }, withFlags, {})[0]!.kubelet.verificationPolicy,
    'NeverVerify',
  )
  const none = poolFile('pools:\n- {name: gpu, nodeLabels: {pool: gpu}}\n')
  t.throws(() => nodePools({ value: none, source: '--node-pools' }, withFlags, {}), {
    message:
      /^--image-pull-credentials-verification-policy: describes the nodes the flags stand for, and no pool of .* is `fromFlags`/,
  })
})

t.test('the kubelet flags for the pool without a file, checked as the kubelet checks them', async (t) => {
  const settings = pullSettings(
    {
      'image-pull-credentials-verification-policy': 'NeverVerifyAllowlistedImages',
      'preloaded-images-verification-allowlist': ['reg.io/base/*'],
    },
    {},
  )
  t.same(settings.nodePools[0]!.kubelet, {
    verificationPolicy: 'NeverVerifyAllowlistedImages',
    allowlist: ['reg.io/base/*'],
  })
  t.throws(() => pullSettings({ 'preloaded-images-verification-allowlist': ['reg.io/*'] }, {}), {
    message:
      /^--preloaded-images-verification-allowlist: can be set only with the verification policy NeverVerifyAllowlistedImages/,
  })
  t.throws(() => pullSettings({ 'image-pull-credentials-verification-policy': 'Always' }, {}), {
    message: /^--image-pull-credentials-verification-policy: "Always" is not one of NeverVerify, /,
  })
  t.equal(
    pullSettings({}, { PULLGUARD_IMAGE_PULL_CREDENTIALS_VERIFICATION_POLICY: 'AlwaysVerify' }).nodePools[0]!.kubelet
      .verificationPolicy,
    'AlwaysVerify',
  )
})
