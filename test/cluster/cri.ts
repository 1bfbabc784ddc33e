// The CRI's image service on containerd's socket, called the way `crictl pull --creds` calls it:
// an image pulled this way is on the node without the kubelet having pulled it, so the kubelet
// keeps no pull record of it and counts it as preloaded (KEP-2535: kubelet v1.37
// pkg/kubelet/images/pullmanager/image_pull_manager.go MustAttemptImagePull), like an image baked
// into a node's disk or imported with ctr.
//
// One unary gRPC call over HTTP/2 on the unix socket (no gRPC library here): the request is the
// protobuf of k8s.io/cri-api runtime/v1 api.proto, written by hand for its few string fields,
//   PullImageRequest { ImageSpec image = 1 { string image = 1 }; AuthConfig auth = 2 { string username = 1; string password = 2 } }
//   PullImageResponse { string image_ref = 1 }
// each framed as gRPC frames a message (a zero compression byte, a 4-byte big-endian length).
import { connect as http2Connect, constants } from 'node:http2'
import { connect as netConnect } from 'node:net'

const PULL_IMAGE = '/runtime.v1.ImageService/PullImage'
/** A pull of one small test image from a registry on this machine takes well under a second. */
const PULL_TIMEOUT_MS = 60_000
/** A PullImageResponse is one image ID (`sha256:` and 64 hex digits) and its framing. */
const MAX_RESPONSE_BYTES = 4096

export interface CriAuth {
  username: string
  password: string
}

/** Pulls `image` through containerd's CRI plugin; the image's ID (its config digest), as the kubelet's records name it. */
export async function criPullImage(socket: string, image: string, auth?: CriAuth): Promise<string> {
  const authFields =
    auth === undefined ? [] : [field(2, Buffer.concat([field(1, auth.username), field(2, auth.password)]))]
  const message = Buffer.concat([field(1, field(1, image)), ...authFields])
  const frame = Buffer.alloc(5)
  frame.writeUInt32BE(message.length, 1)
  const session = http2Connect('http://localhost', { createConnection: () => netConnect(socket) })
  try {
    const answer = await new Promise<{ body: Buffer; status: string; detail: string }>((resolve, reject) => {
      session.once('error', reject)
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: PULL_IMAGE,
        'content-type': 'application/grpc',
        te: 'trailers',
      })
      stream.setTimeout(PULL_TIMEOUT_MS, () => stream.close(constants.NGHTTP2_CANCEL))
      const chunks: Buffer[] = []
      let size = 0
      let status = ''
      let detail = ''
      // A call refused at once has its status in the headers (a "trailers-only" answer).
      const keep = (h: Record<string, unknown>): void => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status'])
        if (h['grpc-message'] !== undefined) detail = decodeURIComponent(String(h['grpc-message']))
      }
      stream.on('response', keep)
      stream.on('trailers', keep)
      stream.on('data', (c: Buffer) => {
        size += c.length
        if (size > MAX_RESPONSE_BYTES) stream.close(constants.NGHTTP2_CANCEL)
        else chunks.push(c)
      })
      stream.once('error', reject)
      stream.once('close', () => resolve({ body: Buffer.concat(chunks), status, detail }))
      stream.end(Buffer.concat([frame, message]))
    })
    if (answer.status !== '0')
      throw new Error(`CRI PullImage ${image}: gRPC status ${answer.status || '(none)'}: ${answer.detail}`)
    const imageRef = readString(answer.body.subarray(5), 1)
    if (imageRef === undefined) throw new Error(`CRI PullImage ${image}: no image_ref in the answer`)
    return imageRef
  } finally {
    session.close()
  }
}

/** A length-delimited protobuf field (wire type 2): a string or an embedded message. */
function field(number: number, value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes])
}

function varint(n: number): Buffer {
  const out: number[] = []
  let v = n
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80)
    v >>>= 7
  }
  out.push(v)
  return Buffer.from(out)
}

/** The string field `number` of a message whose fields are all length-delimited. */
function readString(message: Buffer, number: number): string | undefined {
  let at = 0
  const next = (): number => {
    let value = 0
    let shift = 0
    for (;;) {
      const byte = message[at++]
      if (byte === undefined) throw new Error('CRI: a truncated protobuf varint')
      value |= (byte & 0x7f) << shift
      if (byte < 0x80) return value
      shift += 7
    }
  }
  while (at < message.length) {
    const key = next()
    if ((key & 7) !== 2) throw new Error(`CRI: unexpected protobuf wire type ${key & 7}`)
    const length = next()
    const value = message.subarray(at, at + length)
    at += length
    if (key >>> 3 === number) return value.toString('utf8')
  }
  return undefined
}
