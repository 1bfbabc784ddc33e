import t from 'tap'
import { type TransportError, classifyNetworkError } from '../../src/registry/transport-error.js'

const err = (code: string, message = 'x', name = 'Error') => Object.assign(new Error(message), { code, name })
const cases: Array<[string, unknown, TransportError['reason']]> = [
  ['ENOTFOUND', err('ENOTFOUND'), 'dns'],
  ['EAI_AGAIN', err('EAI_AGAIN'), 'dns'],
  ['ECONNREFUSED', err('ECONNREFUSED'), 'refused'],
  ['ECONNRESET', err('ECONNRESET'), 'reset'],
  ['undici socket closed', err('UND_ERR_SOCKET', 'other side closed'), 'reset'],
  ['undici headers timeout', err('UND_ERR_HEADERS_TIMEOUT'), 'timeout'],
  ['undici body timeout', err('UND_ERR_BODY_TIMEOUT'), 'timeout'],
  ['undici connect timeout', err('UND_ERR_CONNECT_TIMEOUT'), 'timeout'],
  ['TimeoutError DOMException', Object.assign(new Error('t'), { name: 'TimeoutError' }), 'timeout'],
  ['self-signed', err('DEPTH_ZERO_SELF_SIGNED_CERT'), 'tls'],
  ['unknown issuer', err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'tls'],
  ['altname', err('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls'],
  ['plain HTTP server on a TLS port', err('ERR_SSL_WRONG_VERSION_NUMBER'), 'tls'],
  ['expired', err('CERT_HAS_EXPIRED'), 'tls'],
  ['wrapped cause', Object.assign(new Error('fetch failed'), { cause: err('ECONNREFUSED') }), 'refused'],
  ['something else', err('EWHATEVER'), 'bad-response'],
  ['not an Error', 'boom', 'bad-response'],
]
for (const [name, input, reason] of cases) {
  t.test(`classifies ${name} as ${reason}`, async (t) => {
    const out = classifyNetworkError(input, 'reg.example:5000')
    t.equal(out.reason, reason)
    t.match(out.detail, /reg\.example:5000/)
  })
}
