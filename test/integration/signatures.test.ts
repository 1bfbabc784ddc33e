// The nodes' signature policy (CRI-O's policy.json, its per-namespace policies and registries.d),
// with a real distribution registry holding images signed the way `cosign sign --key` signs them:
// the signature an OCI attachment at `sha256-<hex>.sig`. Keys are made here; each image's verdict is
// the one containers-image reaches (test/e2e/crio-reference.test.ts holds the two side by side).
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseServeConfig } from '../../src/serve/config.js'
import { cosignSign, sigstoreAttachmentManifest } from '../helpers/cosign.js'
import { startFakeKubeApi, makeNamespace } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { seedOciIndex, seedOciManifest, seedRawManifest } from '../helpers/seed.js'
import { reviewImages, startWebhook, type RunningWebhook } from '../helpers/webhook.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const reg = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => reg.close())
const other = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => other.close())

const pair = (): { privateKey: KeyObject; pem: string } => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}
const trusted = pair()
const stranger = pair()

/** Signs `digest` in `repository` as cosign does (identity: the repository), and pushes the attachment. */
async function sign(r: RunningRegistry, repository: string, digest: string, key: KeyObject, identity?: string) {
  const layer = cosignSign({
    privateKey: key,
    dockerReference: identity ?? `${r.host}/${repository}`,
    manifestDigest: digest,
  })
  const att = sigstoreAttachmentManifest([layer])
  await seedRawManifest(
    r,
    repository,
    att.tag(digest),
    att.blobs.map((b) => b.data),
    'application/vnd.oci.image.manifest.v1+json',
    att.manifest,
  )
}

const signed = await seedOciManifest(reg, 'team/signed', 'v1')
await sign(reg, 'team/signed', signed.digest, trusted.privateKey)
await seedOciManifest(reg, 'team/unsigned', 'v1')
const strangers = await seedOciManifest(reg, 'team/strangers', 'v1')
await sign(reg, 'team/strangers', strangers.digest, stranger.privateKey)
await seedOciManifest(reg, 'team/app', 'v1')
await seedOciManifest(reg, 'gpg/app', 'v1')
await seedOciManifest(other, 'team/app', 'v1')
const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }
// Signed as `cosign sign` signs by default: the index alone, not the platform manifests nodes pull.
const indexOnly = await seedOciIndex(reg, 'team/multi', 'index-only', [amd64, arm64])
await sign(reg, 'team/multi', indexOnly.digest, trusted.privateKey)
// `cosign sign --recursive`: every platform manifest too.
const recursive = await seedOciIndex(reg, 'team/multi', 'recursive', [amd64, arm64])
for (const d of [recursive.digest, ...recursive.children!.map((c) => c.digest)])
  await sign(reg, 'team/multi', d, trusted.privateKey)
// Only the amd64 manifest signed.
const half = await seedOciIndex(reg, 'team/multi', 'half', [amd64, arm64])
await sign(
  reg,
  'team/multi',
  half.children!.find((c) => c.platform.architecture === 'amd64')!.digest,
  trusted.privateKey,
)

const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
for (const name of ['team-a', 'team-b']) kube.namespaces.set(name, makeNamespace(name))
const counter = countRequests()
t.teardown(() => counter.stop())

const scratch = await mkdtemp(join(tmpdir(), 'pullguard-signatures-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))
const keyPath = join(scratch, 'trusted.pub')
await writeFile(keyPath, trusted.pem)
const registriesConf = join(scratch, 'registries.conf')
await writeFile(registriesConf, '')
const registriesD = join(scratch, 'registries.d')
await mkdir(registriesD)
const attachmentsYaml = `docker:\n  ${reg.host}:\n    use-sigstore-attachments: true\n`
await writeFile(join(registriesD, 'sigstore.yaml'), attachmentsYaml)

const sigstore = (identity = { type: 'matchRepository' }) => ({
  type: 'sigstoreSigned',
  keyPath,
  signedIdentity: identity,
})
/** OpenShift-style: everything rejected but what is named. */
const POLICY = {
  default: [{ type: 'reject' }],
  transports: {
    docker: {
      [`${reg.host}/team`]: [sigstore()],
      [`${reg.host}/team/app`]: [{ type: 'insecureAcceptAnything' }],
      [`${reg.host}/gpg`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath }],
      [`${reg.host}/strict`]: [sigstore({ type: 'matchRepoDigestOrExact' })],
    },
  },
}
let files = 0
async function policyFile(doc: object): Promise<string> {
  const file = join(scratch, `policy-${++files}.json`)
  await writeFile(file, JSON.stringify(doc, null, 2))
  return file
}

async function webhook(args: string[]): Promise<RunningWebhook> {
  const w = await startWebhook({ ca, kube, args: ['--registries-conf', registriesConf, ...args] })
  t.teardown(() => w.close())
  return w
}
const review = reviewImages

t.test(
  'sigstoreSigned with the attachments read: signed allowed, unsigned or signed by another key denied',
  async (t) => {
    const file = await policyFile(POLICY)
    const w = await webhook(['--signature-policy', file, '--registries-d', registriesD])
    const ok = await review(w, [`${reg.host}/team/signed:v1`])
    t.equal(ok.response.allowed, true)
    t.match(ok.logged, [{ reason: 'Exists' }])
    const unsigned = await review(w, [`${reg.host}/team/unsigned:v1`])
    t.equal(unsigned.response.allowed, false)
    t.match(unsigned.logged, [
      {
        reason: 'SignatureValidationFailed',
        signature: { verdict: 'rejected', file, scope: `${reg.host}/team`, requirement: 'sigstoreSigned' },
      },
    ])
    t.match(
      unsigned.response.status.message,
      `is refused by the nodes' signature policy ${file} (scope "${reg.host}/team"): A signature was required, but no signature exists`,
    )
    t.match(unsigned.response.status.message, `cosign sign --key <that private key> ${reg.host}/team/unsigned@sha256:`)
    const foreign = await review(w, [`${reg.host}/team/strangers:v1`])
    t.equal(foreign.response.allowed, false)
    t.match(foreign.response.status.message, 'cryptographic signature verification failed')
  },
)

t.test('the most specific scope wins; the default refuses other registries without a request', async (t) => {
  const w = await webhook(['--signature-policy', await policyFile(POLICY), '--registries-d', registriesD])
  t.equal(
    (await review(w, [`${reg.host}/team/app:v1`])).response.allowed,
    true,
    'insecureAcceptAnything under team/app',
  )
  counter.reset()
  const elsewhere = await review(w, [`${other.host}/team/app:v1`])
  t.equal(elsewhere.response.allowed, false)
  t.match(elsewhere.logged, [{ reason: 'SignatureRejected', signature: { scope: 'default', requirement: 'reject' } }])
  t.match(elsewhere.response.status.message, `is refused by the nodes' signature policy: `)
  t.match(elsewhere.response.status.message, `(its default) requires "reject"`)
  t.match(elsewhere.response.status.message, `Running image docker://${other.host}/team/app:v1 is rejected by policy.`)
  t.equal(counter.count(other.origin), 0, 'the registry was not asked')
})

t.test(
  "cosign's repository identity under the default matchRepoDigestOrExact is refused, by tag and by digest",
  async (t) => {
    const strictSigned = await seedOciManifest(reg, 'strict/app', 'v1')
    await sign(reg, 'strict/app', strictSigned.digest, trusted.privateKey)
    const w = await webhook(['--signature-policy', await policyFile(POLICY), '--registries-d', registriesD])
    for (const image of [`${reg.host}/strict/app:v1`, `${reg.host}/strict/app@${strictSigned.digest}`]) {
      const r = await review(w, [image])
      t.equal(r.response.allowed, false, image)
      t.match(r.response.status.message, 'not accepted', image)
    }
  },
)

t.test('without use-sigstore-attachments the runtime reads no signature: even a signed image is refused', async (t) => {
  const empty = join(scratch, 'registries.d-empty')
  await mkdir(empty)
  const w = await webhook(['--signature-policy', await policyFile(POLICY), '--registries-d', empty])
  const r = await review(w, [`${reg.host}/team/signed:v1`])
  t.equal(r.response.allowed, false)
  t.match(r.response.status.message, `registries.d does not set use-sigstore-attachments for ${reg.host}/team/signed`)
  t.match(r.response.status.message, 'set use-sigstore-attachments: true')
})

t.test('signedBy (GPG) cannot be verified here: --on-registry-error decides, never a silent allow', async (t) => {
  const file = await policyFile(POLICY)
  const allow = await webhook(['--signature-policy', file, '--registries-d', registriesD])
  const allowed = await review(allow, [`${reg.host}/gpg/app:v1`])
  t.equal(allowed.response.allowed, true)
  t.match(allowed.logged, [{ reason: 'SignatureUnverified' }])
  t.match(allowed.response.warnings.join('\n'), 'signedBy (GPGKeys) needs simple-signing signatures')
  const deny = await webhook(['--signature-policy', file, '--registries-d', registriesD, '--on-registry-error', 'deny'])
  const denied = await review(deny, [`${reg.host}/gpg/app:v1`])
  t.equal(denied.response.allowed, false)
  t.match(denied.response.status.message, 'Denied by --on-registry-error=deny')
})

t.test('an index: the platform manifest each node pulls must be signed, not only the index', async (t) => {
  const file = await policyFile(POLICY)
  const w = await webhook([
    '--signature-policy',
    file,
    '--registries-d',
    registriesD,
    '--platform',
    'linux/amd64',
    '--platform',
    'linux/arm64',
  ])
  const only = await review(w, [`${reg.host}/team/multi:index-only`])
  t.equal(only.response.allowed, false, 'cosign sign without --recursive leaves every pull unsigned')
  t.match(only.response.status.message, 'for linux/amd64 (sha256:')
  t.match(
    only.response.status.message,
    `cosign sign --recursive --key <that private key> ${reg.host}/team/multi@${indexOnly.digest}`,
  )
  t.equal(
    (await review(w, [`${reg.host}/team/multi:recursive`])).response.allowed,
    true,
    '--recursive signs what nodes pull',
  )
  const halfSigned = await review(w, [`${reg.host}/team/multi:half`])
  t.equal(halfSigned.response.allowed, false, 'arm64 nodes would refuse it')
  t.match(halfSigned.response.status.message, 'for linux/arm64 (sha256:')
  const amd = await webhook(['--signature-policy', file, '--registries-d', registriesD, '--platform', 'linux/amd64'])
  t.equal(
    (await review(amd, [`${reg.host}/team/multi:half`])).response.allowed,
    true,
    'an amd64-only cluster pulls the signed one',
  )
})

t.test('a per-namespace policy applies to its namespace only', async (t) => {
  const dir = join(scratch, 'policies')
  await mkdir(dir)
  await writeFile(join(dir, 'team-b.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }))
  const w = await webhook([
    '--signature-policy',
    await policyFile(POLICY),
    '--signature-policy-dir',
    dir,
    '--registries-d',
    registriesD,
  ])
  t.equal(
    (await review(w, [`${reg.host}/team/unsigned:v1`], { namespace: 'team-b' })).response.allowed,
    true,
    'team-b.json',
  )
  t.equal(
    (await review(w, [`${reg.host}/team/unsigned:v1`], { namespace: 'team-a' })).response.allowed,
    false,
    'the main policy',
  )
})

t.test('every file read again when it changes: the policy, registries.d, a key, a namespace policy', async (t) => {
  const file = await policyFile(POLICY)
  const dir = join(scratch, 'policies-reload')
  await mkdir(dir)
  const d = join(scratch, 'registries.d-reload')
  await mkdir(d)
  await writeFile(join(d, 'sigstore.yaml'), attachmentsYaml)
  const key = join(scratch, 'reload.pub')
  await writeFile(key, stranger.pem)
  await writeFile(
    file,
    JSON.stringify({
      default: [{ type: 'sigstoreSigned', keyPath: key, signedIdentity: { type: 'matchRepository' } }],
    }),
  )
  const w = await webhook(['--signature-policy', file, '--signature-policy-dir', dir, '--registries-d', d])
  const image = `${reg.host}/team/signed:v1`
  const until = async (want: boolean, namespace = 'team-a'): Promise<boolean> => {
    const deadline = Date.now() + 20_000
    for (;;) {
      const allowed = (await review(w, [image], { namespace })).response.allowed
      if (allowed === want || Date.now() > deadline) return allowed
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  t.equal(await until(false), false, "the stranger's key does not verify it")
  await writeFile(key, trusted.pem)
  t.equal(await until(true), true, 'the key file')
  await writeFile(join(d, 'sigstore.yaml'), 'docker: {}\n')
  t.equal(await until(false), false, 'registries.d')
  await writeFile(file, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }))
  t.equal(await until(true), true, 'the policy')
  await writeFile(join(dir, 'team-a.json'), JSON.stringify({ default: [{ type: 'reject' }] }))
  t.equal(await until(false), false, 'a namespace policy written after start')
  t.ok(w.logs.some((l) => l.includes('signature policy reloaded')))
})

t.test('files refused at start name the file; CRI-O settings need --registries-conf', async (t) => {
  const bad = await policyFile({ default: [{ type: 'sigstoreSigned' }] })
  t.throws(() => parseServeConfig(['--registries-conf', registriesConf, '--signature-policy', bad], {}), {
    name: 'ConfigError',
    message: new RegExp(`--signature-policy: ${bad.replace(/[.]/g, '\\.')}: `),
  })
  t.throws(() => parseServeConfig(['--signature-policy', bad], {}), {
    name: 'ConfigError',
    message: /--signature-policy: is a CRI-O setting/,
  })
  const crio = join(scratch, 'crio.conf')
  await writeFile(
    crio,
    `[crio.image]\nsignature_policy = "${await policyFile(POLICY)}"\nsignature_policy_dir = "${join(scratch, 'none')}"\n`,
  )
  const w = await webhook(['--crio-config', crio, '--registries-d', registriesD])
  t.equal(
    (await review(w, [`${other.host}/team/app:v1`])).response.allowed,
    false,
    "crio.conf's signature_policy is read",
  )
})
