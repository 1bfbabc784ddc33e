// A throw-away certificate authority for integration tests, made with the openssl CLI.
//
// Two verifiers must accept what we issue:
// - Node's TLS (tests and pullguard talk HTTPS to the registry and token server with `ca` = caPem), which
//   checks the SAN (IP:127.0.0.1 / DNS:localhost) and the serverAuth EKU;
// - Go's crypto/x509 inside the registry, which verifies the `x5c` chain of every token JWT against the
//   CA (distribution 2.8 registry/auth/token/token.go, parseAndVerifyCertChain). Go refuses CA certs
//   without basicConstraints CA:TRUE and serial numbers that are negative or longer than 20 octets.
//
// We pass our own openssl config so the host's openssl.cnf (which may add duplicate extensions or
// prompt) cannot change what is issued. EC P-256 keys keep issuance to a few milliseconds.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface IssuedCert {
  certPem: string
  keyPem: string
  certPath: string
  keyPath: string
}
export interface TestCA {
  dir: string
  caPem: string
  caPath: string
  caKeyPath: string
  issue(commonName: string, san: { dns?: string[]; ips?: string[] }): Promise<IssuedCert>
  close(): Promise<void>
}

// Short validity: these certificates live for one test run; a couple of days tolerates clock skew.
const VALID_DAYS = '2'

// `req` insists on a distinguished_name section even when -subj gives the whole subject.
const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
`

function leafExtensions(dns: string[], ips: string[]): string {
  const san = [...dns.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`)].join(',')
  return `[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = ${san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`
}

// 16 random bytes with the top bit cleared: positive and well under Go's 20-octet limit.
function serial(): string {
  const b = randomBytes(16)
  b[0] = (b[0] ?? 0) & 0x7f
  return `0x${b.toString('hex')}`
}

// -subj uses `/` as a separator; keep names to a safe alphabet rather than escaping.
function subject(cn: string): string {
  return `/CN=${cn.replace(/[^A-Za-z0-9 ._-]/g, '_')}`
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 15_000 })
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`openssl ${args[0] ?? ''} failed: ${e.stderr ?? e.message}`)
  }
}

export async function createTestCA(name = 'pullguard test CA'): Promise<TestCA> {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-ca-'))
  const cnf = join(dir, 'openssl.cnf')
  const caPath = join(dir, 'ca.pem')
  const caKeyPath = join(dir, 'ca-key.pem')
  try {
    await writeFile(cnf, OPENSSL_CNF)
    await openssl([
      'req',
      '-x509',
      '-new',
      '-nodes',
      '-config',
      cnf,
      '-extensions',
      'v3_ca',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-keyout',
      caKeyPath,
      '-out',
      caPath,
      '-days',
      VALID_DAYS,
      '-subj',
      subject(name),
      '-set_serial',
      serial(),
    ])
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return issuer(dir, caPath, caKeyPath)
}

/**
 * A CA made by another process (createTestCA there), issuing into a folder of its own: a shared
 * control plane's CA, in the test files that use the plane. close() removes only that folder.
 */
export async function loadTestCA(caPath: string, caKeyPath: string): Promise<TestCA> {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-ca-'))
  await writeFile(join(dir, 'openssl.cnf'), OPENSSL_CNF)
  return issuer(dir, caPath, caKeyPath)
}

async function issuer(dir: string, caPath: string, caKeyPath: string): Promise<TestCA> {
  const cnf = join(dir, 'openssl.cnf')
  let counter = 0
  const caPem = await readFile(caPath, 'utf8')

  async function issue(commonName: string, san: { dns?: string[]; ips?: string[] }): Promise<IssuedCert> {
    let dns = san.dns ?? []
    let ips = san.ips ?? []
    // An empty SAN would make the cert useless for TLS; default to the only host tests use.
    if (dns.length === 0 && ips.length === 0) {
      dns = ['localhost']
      ips = ['127.0.0.1']
    }
    const base = join(dir, `leaf-${++counter}`)
    const keyPath = `${base}-key.pem`
    const certPath = `${base}.pem`
    await writeFile(`${base}.ext`, leafExtensions(dns, ips))
    await openssl([
      'req',
      '-new',
      '-nodes',
      '-config',
      cnf,
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-keyout',
      keyPath,
      '-out',
      `${base}.csr`,
      '-subj',
      subject(commonName),
    ])
    await openssl([
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      caPath,
      '-CAkey',
      caKeyPath,
      '-set_serial',
      serial(),
      '-days',
      VALID_DAYS,
      '-extfile',
      `${base}.ext`,
      '-extensions',
      'v3_leaf',
      '-out',
      certPath,
    ])
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')])
    return { certPem, keyPem, certPath, keyPath }
  }

  return {
    dir,
    caPem,
    caPath,
    caKeyPath,
    issue,
    close: () => rm(dir, { recursive: true, force: true }),
  }
}
