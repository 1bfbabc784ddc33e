// Starts `pullguard serve` in-process on 127.0.0.1 (the same createServe the CLI uses), over real
// HTTPS, wired to a fake Kubernetes API through a real kubeconfig file, and captures every log line.
import { Writable } from 'node:stream'
import { Agent, request } from 'undici'
import { parseServeConfig } from '../../src/serve/config.js'
import { loadKubeConfig } from '../../src/kube/kube-api.js'
import { createServe } from '../../src/serve/webhook.js'
import { createLogger } from '../../src/log/logger.js'
import { loadFixture } from './fixtures.js'
import type { FakeKubeApi } from './fake-kube-api.js'
import type { TestCA } from './pki.js'

export interface RunningWebhook {
  origin: string
  /** Every log line written so far (JSON text). */
  logs: string[]
  /** POSTs a body (an object is sent as JSON, a string or Buffer as is) to /validate, or to `path`. */
  post(
    body: unknown,
    headers?: Record<string, string>,
    path?: string,
  ): Promise<{ status: number; body: any; text: string }>
  get(path: string): Promise<{ status: number; body: any; text: string }>
  close(): Promise<void>
}

export async function startWebhook(opts: {
  ca: TestCA
  kube: FakeKubeApi
  args?: string[]
  env?: Record<string, string>
  tls?: { certPath: string; keyPath: string }
}): Promise<RunningWebhook> {
  const cert = opts.tls ?? (await opts.ca.issue('pullguard webhook', { dns: ['localhost'], ips: ['127.0.0.1'] }))
  const config = parseServeConfig(
    [
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--tls-cert',
      cert.certPath,
      '--tls-key',
      cert.keyPath,
      '--registry-ca',
      opts.ca.caPath,
      '--log-level',
      'debug',
      ...(opts.args ?? []),
    ],
    opts.env ?? {},
  )
  const logs: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      )
      done()
    },
  })
  const serve = await createServe(config, createLogger(config.logLevel, sink), loadKubeConfig(opts.kube.kubeconfigPath))
  await serve.app.listen({ port: 0, host: '127.0.0.1' })
  const address = serve.app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const origin = `https://127.0.0.1:${port}`
  const agent = new Agent({ connect: { ca: opts.ca.caPem }, connections: 64 })
  const parse = (text: string): unknown => {
    try {
      return JSON.parse(text)
    } catch {
      return undefined
    }
  }
  return {
    origin,
    logs,
    async post(body, headers = {}, path = '/validate') {
      const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body)
      const res = await request(`${origin}${path}`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', ...headers },
        body: payload,
      })
      const text = await res.body.text()
      return { status: res.statusCode, body: parse(text), text }
    },
    async get(path) {
      const res = await request(`${origin}${path}`, { dispatcher: agent })
      const text = await res.body.text()
      return { status: res.statusCode, body: parse(text), text }
    },
    async close() {
      await agent.close()
      await serve.close()
    },
  }
}

let reviews = 0

/**
 * A Pod CREATE of `images` (one container each, `c0`, `c1`, …) in `namespace` with these pull
 * secrets, posted to `w`: the review's answer and its decision log line's images.
 */
export async function reviewImages(
  w: RunningWebhook,
  images: readonly string[],
  options: { namespace?: string; secrets?: readonly string[] } = {},
): Promise<{ response: any; logged: any[] }> {
  const namespace = options.namespace ?? 'team-a'
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = `review-${++reviews}`
  r.request.namespace = namespace
  r.request.object.metadata.namespace = namespace
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }))
  r.request.object.spec.imagePullSecrets = (options.secrets ?? []).map((name) => ({ name }))
  const res = await w.post(r)
  if (res.status !== 200) throw new Error(`the review was answered HTTP ${res.status}: ${res.text}`)
  const line = w.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.uid === r.request.uid)
  return { response: res.body.response, logged: line?.images ?? [] }
}
