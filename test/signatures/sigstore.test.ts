// Sigstore signature verification as containers-image does it when CRI-O pulls: cosign's payloads
// signed with ECDSA, RSA and Ed25519 keys; each way a signature is refused, with containers-image's
// words; what pullguard cannot check (Rekor, Fulcio, PKI) only where the outcome depends on it; and
// the requirement list as a whole.
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import selfsigned from 'selfsigned'
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import type { Requirement, SignedIdentity } from '../../src/signatures/policy.js'
import {
  evaluateRequirements,
  SIGSTORE_SIGNATURE_MEDIA_TYPE,
  type SignedImage,
  type SigstoreSignature,
  verifySigstore,
} from '../../src/signatures/sigstore.js'
import { cosignSign, SIGNATURE_ANNOTATION, sigstoreAttachmentManifest } from '../helpers/cosign.js'

type Sigstore = Extract<Requirement, { type: 'sigstoreSigned' }>

const DIGEST = `sha256:${'a'.repeat(64)}`
const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`
const IMAGE = { ref: parseReference('quay.io/ns/app:1'), manifestDigest: DIGEST }
const BUNDLE = 'dev.sigstore.cosign/bundle'
const CERTIFICATE = 'dev.sigstore.cosign/certificate'

const ecdsa = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ed25519 = generateKeyPairSync('ed25519')
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' })

const requirement = (keys: KeyObject[], extra: Partial<Sigstore> = {}): Sigstore => ({
  type: 'sigstoreSigned',
  keys,
  rekor: false,
  signedIdentity: { type: 'matchRepoDigestOrExact' },
  ...extra,
})
const signature = (
  privateKey: KeyObject,
  dockerReference = 'quay.io/ns/app:1',
  manifestDigest = DIGEST,
  annotations: Record<string, string> = {},
): SigstoreSignature => {
  const signed = cosignSign({ privateKey, dockerReference, manifestDigest })
  return {
    mediaType: SIGSTORE_SIGNATURE_MEDIA_TYPE,
    payload: signed.payload,
    annotations: { ...signed.annotations, ...annotations },
  }
}
/** A payload of our choosing, correctly signed: only its contents can be wrong. */
const signedPayload = (payload: string, privateKey: KeyObject = ecdsa.privateKey): SigstoreSignature => ({
  mediaType: SIGSTORE_SIGNATURE_MEDIA_TYPE,
  payload: Buffer.from(payload),
  annotations: { [SIGNATURE_ANNOTATION]: sign('sha256', Buffer.from(payload), privateKey).toString('base64') },
})
const verdict = (req: Sigstore, sigs: SigstoreSignature[], image: SignedImage = IMAGE): string => {
  const v = verifySigstore(req, image, sigs)
  return v.verdict === 'accepted' ? 'accepted' : `${v.verdict}: ${v.reason}`
}

t.test('cosign signatures made with each key type are accepted', async (t) => {
  for (const [name, pair] of [
    ['ECDSA P-256', ecdsa],
    ['RSA 2048', rsa],
    ['Ed25519', ed25519],
  ] as const) {
    t.equal(verdict(requirement([pair.publicKey]), [signature(pair.privateKey)]), 'accepted', name)
  }
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  t.equal(verdict(requirement([p384.publicKey]), [signature(p384.privateKey)]), 'accepted', 'P-384, still SHA-256')
  t.equal(
    verdict(requirement([stranger.publicKey, ecdsa.publicKey]), [signature(ecdsa.privateKey)]),
    'accepted',
    'any one of several keys',
  )
  const p1363 = signedPayload('x')
  const payload = cosignSign({
    privateKey: ecdsa.privateKey,
    dockerReference: 'quay.io/ns/app:1',
    manifestDigest: DIGEST,
  }).payload
  p1363.payload = payload
  p1363.annotations = {
    [SIGNATURE_ANNOTATION]: sign('sha256', payload, { key: ecdsa.privateKey, dsaEncoding: 'ieee-p1363' }).toString(
      'base64',
    ),
  }
  t.equal(verdict(requirement([ecdsa.publicKey]), [p1363]), 'accepted', 'ECDSA as IEEE P1363 r||s')
  t.equal(
    verdict(requirement([ecdsa.publicKey]), [signature(stranger.privateKey), signature(ecdsa.privateKey)]),
    'accepted',
    'one good signature among bad ones',
  )
})

t.test('each way a signature is refused, in containers-image words', async (t) => {
  const good = signature(ecdsa.privateKey)
  const tampered = { ...good, payload: Buffer.from(good.payload.toString().replace('app:1', 'app:2')) }
  const { [SIGNATURE_ANNOTATION]: _, ...noSignature } = good.annotations
  const table: Array<[string, Sigstore, SigstoreSignature[], string]> = [
    [
      'no signatures at all',
      requirement([ecdsa.publicKey]),
      [],
      'rejected: A signature was required, but no signature exists',
    ],
    [
      'only other attachments',
      requirement([ecdsa.publicKey]),
      [{ ...good, mediaType: 'application/vnd.dsse.envelope.v1+json' }],
      'rejected: A signature was required, but no signature exists (0 non-sigstore signatures, 1 sigstore non-signature attachments)',
    ],
    [
      'another key',
      requirement([ecdsa.publicKey]),
      [signature(stranger.privateKey)],
      'rejected: cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature',
    ],
    [
      'another key, each key failing in turn',
      requirement([ecdsa.publicKey, rsa.publicKey, ed25519.publicKey]),
      [signature(stranger.privateKey)],
      'rejected: cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature, crypto/rsa: verification error, failed to verify signature',
    ],
    [
      'a tampered payload',
      requirement([ecdsa.publicKey]),
      [tampered],
      'rejected: cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature',
    ],
    [
      'a signature of the wrong length',
      requirement([ecdsa.publicKey]),
      [{ ...good, annotations: { [SIGNATURE_ANNOTATION]: Buffer.from('abc').toString('base64') } }],
      'rejected: cryptographic signature verification failed: ecdsa: Invalid IEEE_P1363 encoded bytes',
    ],
    [
      'a signature that is not base64',
      requirement([ecdsa.publicKey]),
      [{ ...good, annotations: { [SIGNATURE_ANNOTATION]: 'not base64!' } }],
      'rejected: base64 decoding: illegal base64 data at input byte 3',
    ],
    [
      'no signature annotation',
      requirement([ecdsa.publicKey]),
      [{ ...good, annotations: noSignature }],
      'rejected: missing dev.cosignproject.cosign/signature annotation',
    ],
    [
      'another manifest',
      requirement([ecdsa.publicKey]),
      [signature(ecdsa.privateKey, 'quay.io/ns/app:1', OTHER_DIGEST)],
      `rejected: Signature for digest ${OTHER_DIGEST} does not match`,
    ],
    [
      'another tag',
      requirement([ecdsa.publicKey]),
      [signature(ecdsa.privateKey, 'quay.io/ns/app:2')],
      'rejected: Signature for identity "quay.io/ns/app:2" is not accepted',
    ],
    [
      "cosign's repository-only claim under the default identity",
      requirement([ecdsa.publicKey]),
      [signature(ecdsa.privateKey, 'quay.io/ns/app')],
      'rejected: Signature for identity "quay.io/ns/app" is not accepted',
    ],
    [
      'a key that would not load',
      requirement([], { keyProblem: 'open /etc/pki/cosign.pub: no such file or directory' }),
      [good],
      'rejected: open /etc/pki/cosign.pub: no such file or directory',
    ],
    [
      'a key that would not load, and no signature to try it on',
      requirement([], { keyProblem: 'open /etc/pki/cosign.pub: no such file or directory' }),
      [],
      'rejected: A signature was required, but no signature exists',
    ],
    [
      'a key type no verifier takes fails even with a good key beside it',
      requirement([ecdsa.publicKey, generateKeyPairSync('x25519').publicKey]),
      [good],
      'rejected: unsupported public key type',
    ],
    [
      'an RSA key under 1024 bits',
      requirement([generateKeyPairSync('rsa', { modulusLength: 768 }).publicKey]),
      [good],
      'rejected: cryptographic signature verification failed: crypto/rsa: 768-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)',
    ],
    [
      'two bad signatures',
      requirement([ecdsa.publicKey]),
      [signature(ecdsa.privateKey, 'quay.io/ns/app:2'), { ...good, annotations: noSignature }],
      'rejected: None of the signatures were accepted, reasons: Signature for identity "quay.io/ns/app:2" is not accepted; missing dev.cosignproject.cosign/signature annotation',
    ],
  ]
  for (const [name, req, sigs, want] of table) t.equal(verdict(req, sigs), want, name)
  t.equal(
    verdict(requirement([ecdsa.publicKey]), [], { ...IMAGE, nonSigstoreSignatures: 2 }),
    'rejected: A signature was required, but no signature exists (2 non-sigstore signatures, 0 sigstore non-signature attachments)',
    'simple-signing signatures found elsewhere only change the message',
  )
})

t.test('identities: the requirement decides what a claim must say', async (t) => {
  const byDigest = { ref: parseReference(`quay.io/ns/app@${DIGEST}`), manifestDigest: DIGEST }
  const table: Array<[SignedIdentity, string, SignedImage, boolean]> = [
    [{ type: 'matchRepository' }, 'quay.io/ns/app', IMAGE, true],
    [{ type: 'matchRepoDigestOrExact' }, 'quay.io/ns/app', byDigest, false],
    [{ type: 'matchRepoDigestOrExact' }, 'quay.io/ns/app:whatever', byDigest, true],
    [{ type: 'matchExact' }, `quay.io/ns/app@${DIGEST}`, byDigest, true],
    [{ type: 'exactRepository', dockerRepository: 'quay.io/upstream/app' }, 'quay.io/upstream/app', IMAGE, true],
  ]
  for (const [signedIdentity, claim, image, ok] of table) {
    t.equal(
      verdict(requirement([ecdsa.publicKey], { signedIdentity }), [signature(ecdsa.privateKey, claim)], image) ===
        'accepted',
      ok,
      `${signedIdentity.type} with ${claim} for ${image.ref.input}`,
    )
  }
})

t.test("the payload must be exactly cosign's", async (t) => {
  const critical = `"critical":{"identity":{"docker-reference":"quay.io/ns/app:1"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"}`
  const table: Array<[string, string, string]> = [
    ['optional null', `{${critical},"optional":null}`, 'accepted'],
    [
      'optional with creator, timestamp and more',
      `{${critical},"optional":{"creator":"me","timestamp":1700000000,"x":[1]}}`,
      'accepted',
    ],
    [
      'a fractional timestamp',
      `{${critical},"optional":{"timestamp":1.5}}`,
      'rejected: Field optional.timestamp is not an integer',
    ],
    [
      'a creator that is not text',
      `{${critical},"optional":{"creator":1}}`,
      'rejected: json: cannot unmarshal number into Go value of type string',
    ],
    ['optional missing', `{${critical}}`, 'rejected: Key "optional" missing in a JSON object'],
    ['an extra top-level key', `{${critical},"optional":null,"extra":1}`, 'rejected: Unknown key "extra"'],
    ['a repeated key', `{${critical},"optional":null,"optional":null}`, 'rejected: Duplicate key "optional"'],
    ['optional a list', `{${critical},"optional":[]}`, 'rejected: JSON object expected, got 91'],
    [
      'another type',
      `{"critical":{"identity":{"docker-reference":"quay.io/ns/app:1"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"atomic container signature"},"optional":null}`,
      'rejected: Unrecognized signature type atomic container signature',
    ],
    [
      'an extra critical key',
      `{"critical":{"identity":{"docker-reference":"quay.io/ns/app:1"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature","x":1},"optional":null}`,
      'rejected: Unknown key "x"',
    ],
    [
      'a digest that is not one',
      '{"critical":{"identity":{"docker-reference":"quay.io/ns/app:1"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"cosign container image signature"},"optional":null}',
      'rejected: invalid docker-manifest-digest value "sha256:abc": invalid checksum digest length',
    ],
    [
      'an identity without docker-reference',
      `{"critical":{"identity":{},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
      'rejected: Key "docker-reference" missing in a JSON object',
    ],
    ['not JSON', `{${critical}`, 'rejected: unexpected end of JSON input'],
  ]
  for (const [name, payload, want] of table)
    t.equal(verdict(requirement([ecdsa.publicKey]), [signedPayload(payload)]), want, name)
})

t.test('Rekor: unverifiable only when everything else holds', async (t) => {
  const rekor = requirement([ecdsa.publicKey], { rekor: true })
  const table: Array<[string, SigstoreSignature[], string]> = [
    ['no bundle', [signature(ecdsa.privateKey)], 'rejected: missing dev.sigstore.cosign/bundle annotation'],
    [
      'a bundle on a good signature',
      [signature(ecdsa.privateKey, undefined, undefined, { [BUNDLE]: '{}' })],
      'unverifiable: the signature verifies, but the policy also requires a Rekor inclusion proof (rekorPublicKey…), which pullguard does not check',
    ],
    [
      'a bundle on a signature by another key',
      [signature(stranger.privateKey, undefined, undefined, { [BUNDLE]: '{}' })],
      'rejected: cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature',
    ],
    [
      'a bundle on a signature for another image',
      [signature(ecdsa.privateKey, undefined, OTHER_DIGEST, { [BUNDLE]: '{}' })],
      `rejected: Signature for digest ${OTHER_DIGEST} does not match`,
    ],
  ]
  for (const [name, sigs, want] of table) t.equal(verdict(rekor, sigs), want, name)
})

t.test('Fulcio and PKI: the certificate chain is beyond pullguard, the payload is not', async (t) => {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'signer' }], { keyType: 'ec', curve: 'P-256' })
  const certKey = createPrivateKey(pems.private)
  const fulcio = requirement([], { certificateBased: 'fulcio', rekor: true })
  const pki = requirement([], { certificateBased: 'pki' })
  const withCert = (key: KeyObject, extra: Record<string, string>, digest = DIGEST): SigstoreSignature =>
    signature(key, undefined, digest, extra)
  const table: Array<[string, Sigstore, SigstoreSignature[], RegExp]> = [
    [
      'fulcio without a bundle',
      fulcio,
      [withCert(certKey, { [CERTIFICATE]: pems.cert })],
      /^rejected: missing dev.sigstore.cosign\/bundle annotation$/,
    ],
    [
      'fulcio without a certificate',
      fulcio,
      [withCert(certKey, { [BUNDLE]: '{}' })],
      /^rejected: missing dev.sigstore.cosign\/certificate annotation$/,
    ],
    [
      'pki without a certificate',
      pki,
      [withCert(certKey, {})],
      /^rejected: missing dev.sigstore.cosign\/certificate annotation$/,
    ],
    [
      'fulcio, signed by the certificate key',
      fulcio,
      [withCert(certKey, { [BUNDLE]: '{}', [CERTIFICATE]: pems.cert })],
      /^unverifiable: .*Fulcio certificates \(fulcio\)/,
    ],
    [
      'pki, signed by the certificate key',
      pki,
      [withCert(certKey, { [CERTIFICATE]: pems.cert })],
      /^unverifiable: .*CA-issued certificates \(pki\)/,
    ],
    [
      'pki, signed by another key',
      pki,
      [withCert(stranger.privateKey, { [CERTIFICATE]: pems.cert })],
      /^rejected: cryptographic signature verification failed/,
    ],
    [
      'fulcio, certificate key but another image',
      fulcio,
      [withCert(certKey, { [BUNDLE]: '{}', [CERTIFICATE]: pems.cert }, OTHER_DIGEST)],
      /^rejected: Signature for digest/,
    ],
    [
      'pki, a certificate annotation that is not PEM',
      pki,
      [withCert(certKey, { [CERTIFICATE]: 'garbage' })],
      /^rejected: parsing leaf certificate: error during PEM decoding$/,
    ],
    [
      'pki, two certificates',
      pki,
      [withCert(certKey, { [CERTIFICATE]: `${pems.cert}\n${pems.cert}` })],
      /^rejected: unexpected multiple certificates present in signature certificate data$/,
    ],
    [
      'pki, a certificate block that does not parse',
      pki,
      [withCert(certKey, { [CERTIFICATE]: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' })],
      /^unverifiable: pullguard could not read the signing certificate/,
    ],
  ]
  for (const [name, req, sigs, want] of table) t.match(verdict(req, sigs), want, name)
})

t.test('a requirement list: every requirement must accept', async (t) => {
  const good = [signature(ecdsa.privateKey)]
  const signed = requirement([ecdsa.publicKey])
  const signedBy: Requirement = {
    type: 'signedBy',
    keyType: 'GPGKeys',
    signedIdentity: { type: 'matchRepoDigestOrExact' },
  }
  const table: Array<[string, Requirement[], string]> = [
    ['insecureAcceptAnything', [{ type: 'insecureAcceptAnything' }], 'accepted'],
    [
      'reject',
      [{ type: 'reject' }],
      'rejected by reject: Running image docker://quay.io/ns/app:1 is rejected by policy.',
    ],
    [
      'signedBaseLayer',
      [{ type: 'signedBaseLayer' }],
      'rejected by signedBaseLayer: signedBaseLayer not implemented yet!',
    ],
    [
      'signedBy',
      [signedBy],
      'unverifiable by signedBy: signedBy (GPGKeys) needs simple-signing signatures from a lookaside or the registry, which pullguard does not verify',
    ],
    ['a good sigstore signature', [signed], 'accepted'],
    ['a good signature and insecureAcceptAnything', [{ type: 'insecureAcceptAnything' }, signed], 'accepted'],
    [
      'a good signature and a reject',
      [signed, { type: 'reject' }],
      'rejected by reject: Running image docker://quay.io/ns/app:1 is rejected by policy.',
    ],
    [
      'unverifiable, then a definite rejection',
      [signedBy, { type: 'reject' }],
      'rejected by reject: Running image docker://quay.io/ns/app:1 is rejected by policy.',
    ],
    [
      'a good signature and signedBy',
      [signed, signedBy],
      'unverifiable by signedBy: signedBy (GPGKeys) needs simple-signing signatures from a lookaside or the registry, which pullguard does not verify',
    ],
    ['empty', [], 'rejected: List of verification policy requirements must not be empty'],
  ]
  for (const [name, reqs, want] of table) {
    const v = evaluateRequirements(reqs, IMAGE, good)
    const by = v.requirement === undefined ? '' : ` by ${v.requirement}`
    t.equal(v.verdict === 'accepted' ? 'accepted' : `${v.verdict}${by}: ${v.reason}`, want, name)
  }
  const nginx = evaluateRequirements([{ type: 'reject' }], { ref: parseReference('nginx'), manifestDigest: DIGEST }, [])
  t.match(
    nginx,
    { verdict: 'rejected', reason: 'Running image docker://nginx:latest is rejected by policy.' },
    'the image is named the docker transport way',
  )
})

t.test('the attachment cosign pushes carries the same signatures', async (t) => {
  const sig = cosignSign({ privateKey: ecdsa.privateKey, dockerReference: 'quay.io/ns/app:1', manifestDigest: DIGEST })
  const attachment = sigstoreAttachmentManifest([{ payload: sig.payload, annotations: sig.annotations }])
  t.equal(attachment.tag(DIGEST), `sha256-${'a'.repeat(64)}.sig`)
  const manifest = JSON.parse(attachment.manifest.toString()) as {
    mediaType: string
    config: { mediaType: string; digest: string }
    layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }>
  }
  t.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json')
  t.equal(manifest.config.digest, attachment.configDigest)
  t.same(
    attachment.blobs.map((b) => b.digest),
    [attachment.configDigest, manifest.layers[0]?.digest],
  )
  const layers: SigstoreSignature[] = manifest.layers.map((layer, i) => ({
    mediaType: layer.mediaType,
    payload: attachment.blobs[i + 1]!.data,
    annotations: layer.annotations,
  }))
  t.equal(verdict(requirement([ecdsa.publicKey]), layers), 'accepted')
})
