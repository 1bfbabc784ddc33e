import { hostname } from 'node:os'
import selfsigned from 'selfsigned'

/**
 * A self-signed serving pair made in memory, for `pullguard serve` without --tls-cert/--tls-key.
 * Good for trying pullguard out; an API server will only trust it if you hand it this cert as
 * the webhook's caBundle, so production installs use cert-manager or certs/.
 */
export async function generateDevCertificate(): Promise<{ certPem: string; keyPem: string }> {
  const notBefore = new Date(Date.now() - 60_000)
  const notAfter = new Date(notBefore.getTime() + 90 * 24 * 60 * 60 * 1000)
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'pullguard.pullguard.svc' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'pullguard.pullguard.svc' },
          { type: 2, value: 'pullguard.pullguard.svc.cluster.local' },
          { type: 2, value: 'localhost' },
          { type: 2, value: hostname() },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  })
  return { certPem: pems.cert, keyPem: pems.private }
}
