// Pushes a Docker schema 1 signed manifest (application/vnd.docker.distribution.manifest.v1+prettyjws)
// into a running test registry, the way a 2015-era `docker push` did. Start the registry with
// `schema1: true`: distribution 2.8 refuses schema 1 PUTs otherwise. Anonymous pushes only (auth 'none').
//
//  1. The layer blobs go first: distribution checks that every fsLayers blobSum is in the repository
//     (registry/storage/signedmanifesthandler.go, verifyManifest → MANIFEST_BLOB_UNKNOWN).
//  2. The payload is the manifest indented by three spaces, as distribution's schema1.Sign makes it
//     (json.MarshalIndent(m, "", "   ")). history[i] describes fsLayers[i], newest first; history[0]'s
//     v1Compatibility is the image config, which containerd 1.x turns into the OCI config when it pulls
//     (remotes/docker/schema1/converter.go).
//  3. libtrust's JWS (jsonsign.go): the protected header is base64url JSON {formatLength, formatTail,
//     time}, where payload[:formatLength] is the payload up to its last value and formatTail the rest
//     ("\n}"). The signing input is `protected + "." + base64url(payload)`; ES256 with a fresh P-256 key,
//     the signature raw r||s. The header carries the public key as a JWK whose `kid`, if present, must be
//     libtrust's fingerprint of the key (ec_key.go, ecPublicKeyFromMap).
//  4. The "pretty signature": payload[:formatLength] + `,\n   "signatures": [...]\n}`, as PrettySignature
//     lays it out. The registry verifies it, then stores only the payload without signatures
//     (SignedManifest.Canonical): the digest it reports is sha256 of that, not of the bytes PUT.
//  5. On every read distribution signs the stored payload again with its own key (signedManifestHandler
//     Unmarshal), so a GET answers the same payload under a different signature and the same digest.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { Agent, request } from 'undici'
import type { RunningRegistry } from './registry.js'
import type { ImageContents } from './seed.js'

export const SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'

export interface Schema1Options {
  /** The image's layers as uncompressed tar archives, oldest first; default one empty archive. */
  contents?: ImageContents
  architecture?: string
  os?: string
}
export interface Schema1Pushed {
  /** Docker-Content-Digest of the PUT: sha256 of the payload without signatures. */
  digest: string
  /** The exact bytes PUT, our signature included. */
  signed: Buffer
}

// An empty tar archive is two zero blocks.
const EMPTY_TAR = Buffer.alloc(1024)
const INDENT = '   '
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
const hex = (s: string): string => createHash('sha256').update(s).digest('hex')
const b64url = (b: Buffer): string => b.toString('base64url')

export async function pushSchema1(
  reg: RunningRegistry,
  repository: string,
  tag: string,
  options: Schema1Options = {},
): Promise<Schema1Pushed> {
  const contents = options.contents ?? { layers: [EMPTY_TAR] }
  const agent = new Agent({ connect: { ca: reg.caPem } })
  try {
    const blobSums: string[] = []
    for (const tar of contents.layers) blobSums.push(await pushBlob(reg, agent, repository, gzipSync(tar)))
    const payload = Buffer.from(JSON.stringify(manifest(repository, tag, blobSums, contents, options), null, 3))
    const signed = signPretty(payload)
    const res = await request(new URL(`/v2/${repository}/manifests/${tag}`, reg.origin), {
      method: 'PUT',
      headers: { 'content-type': SCHEMA1_SIGNED },
      body: signed,
      dispatcher: agent,
    })
    const text = await res.body.text()
    if (res.statusCode !== 201)
      throw new Error(`schema1 PUT ${repository}:${tag} → ${res.statusCode}: ${text.slice(0, 500)}`)
    const digest = String(res.headers['docker-content-digest'])
    if (digest !== sha256(payload))
      throw new Error(`schema1 PUT: registry digest ${digest}, payload ${sha256(payload)}`)
    return { digest, signed }
  } finally {
    await agent.close()
  }
}

/** The payload a pretty signature signs, signatures removed (libtrust ParsePrettySignature). */
export function schema1Payload(signed: Buffer): Buffer {
  const doc = JSON.parse(signed.toString('utf8')) as { signatures?: Array<{ protected?: string }> }
  const protectedB64 = doc.signatures?.[0]?.protected
  if (protectedB64 === undefined) throw new Error('schema1: no signatures')
  const header = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8')) as {
    formatLength: number
    formatTail: string
  }
  return Buffer.concat([signed.subarray(0, header.formatLength), Buffer.from(header.formatTail, 'base64url')])
}

async function pushBlob(reg: RunningRegistry, agent: Agent, repository: string, data: Buffer): Promise<string> {
  const digest = sha256(data)
  const start = await request(new URL(`/v2/${repository}/blobs/uploads/`, reg.origin), {
    method: 'POST',
    dispatcher: agent,
  })
  await start.body.dump()
  if (start.statusCode !== 202) throw new Error(`schema1 blob upload start → ${start.statusCode}`)
  const location = new URL(String(start.headers.location), reg.origin)
  location.searchParams.set('digest', digest)
  const put = await request(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
    dispatcher: agent,
  })
  const text = await put.body.text()
  if (put.statusCode !== 201) throw new Error(`schema1 blob PUT ${digest} → ${put.statusCode}: ${text.slice(0, 500)}`)
  return digest
}

// v1 ids chain the layers the way distribution's schema1 config builder makes them up
// (manifest/schema1/config_builder.go): each from its blobSum and its parent's id.
function manifest(
  repository: string,
  tag: string,
  blobSums: readonly string[],
  contents: ImageContents,
  options: Schema1Options,
): object {
  const architecture = options.architecture ?? 'amd64'
  const created = '2015-06-01T00:00:00Z'
  const createdBy = (i: number) => ({ Cmd: [`/bin/sh -c #(nop) ADD layer ${i} in /`] })
  const history: string[] = []
  let parent = ''
  blobSums.forEach((blobSum, i) => {
    const top = i === blobSums.length - 1
    const config = top
      ? {
          architecture,
          os: options.os ?? 'linux',
          config: {
            Labels: { 'pullguard.test/ref': `${repository}:${tag}` },
            ...(contents.entrypoint === undefined ? {} : { Entrypoint: contents.entrypoint }),
          },
        }
      : {}
    const id = hex(`${blobSum.slice('sha256:'.length)} ${parent}${top ? ` ${JSON.stringify(config)}` : ''}`)
    history.unshift(
      JSON.stringify({
        ...config,
        id,
        ...(parent === '' ? {} : { parent }),
        created,
        container_config: createdBy(i),
      }),
    )
    parent = id
  })
  return {
    schemaVersion: 1,
    name: repository,
    tag,
    architecture,
    fsLayers: [...blobSums].reverse().map((blobSum) => ({ blobSum })),
    history: history.map((v1Compatibility) => ({ v1Compatibility })),
  }
}

// libtrust's NewJSONSignature + Sign + PrettySignature("signatures") for one fresh key.
function signPretty(payload: Buffer): Buffer {
  const text = payload.toString('utf8')
  const end = text.trimEnd()
  if (!end.endsWith('}')) throw new Error('schema1: payload is not a JSON object')
  const formatLength = Buffer.byteLength(end.slice(0, -1).trimEnd())
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const protectedHeader = b64url(
    Buffer.from(
      JSON.stringify({
        formatLength,
        formatTail: b64url(payload.subarray(formatLength)),
        time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      }),
    ),
  )
  const signature = sign('sha256', Buffer.from(`${protectedHeader}.${b64url(payload)}`), {
    key: privateKey,
    dsaEncoding: 'ieee-p1363',
  })
  const signatures = [
    { header: { jwk: jwk(publicKey), alg: 'ES256' }, signature: b64url(signature), protected: protectedHeader },
  ]
  const marshalled = JSON.stringify(signatures, null, 3).replaceAll('\n', `\n${INDENT}`)
  return Buffer.concat([payload.subarray(0, formatLength), Buffer.from(`,\n${INDENT}"signatures": ${marshalled}\n}`)])
}

function jwk(publicKey: KeyObject): object {
  const { crv, x, y } = publicKey.export({ format: 'jwk' })
  return { crv, kid: keyId(publicKey), kty: 'EC', x, y }
}

// libtrust keyIDFromCryptoKey: sha256 of the PKIX DER, first 240 bits, base32 in groups of four.
function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' })
  const digest = createHash('sha256').update(der).digest().subarray(0, 30)
  return (base32(digest).match(/.{4}/g) ?? []).join(':')
}

// RFC 4648 base32 without padding; 30 bytes make exactly 48 characters.
function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}
