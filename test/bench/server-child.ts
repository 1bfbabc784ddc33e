// One server under benchmark, in its own process so the load generator does not share its event
// loop: `ceiling` (bare Fastify, same TLS settings, parses the review, answers a fixed allow),
// `pullguard` (the real `serve`, built by createServe), or the memory phase's instant registry. The parent sends {role settings} over IPC
// and gets {port}; later {memory} requests are answered with process.memoryUsage() after a GC.
import Fastify from 'fastify'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { parseServeConfig } from '../../src/serve/config.js'
import { loadKubeConfig } from '../../src/kube/kube-api.js'
import { createServe } from '../../src/serve/webhook.js'
import { useJsonBodyParser } from '../../src/server/json-body.js'
import { createLogger } from '../../src/log/logger.js'

export type ChildRequest =
  | { start: 'ceiling'; certPem: string; keyPem: string }
  /** A registry where every manifest exists, answered without disk or auth (the memory phase's). */
  | { start: 'instant-registry'; certPem: string; keyPem: string }
  | { start: 'pullguard'; args: string[]; kubeconfigPath: string }
  | { memory: true }
  /** The instant registry's manifest requests so far, or those between two times (ms since the epoch). */
  | { manifestRequests: true; from?: number; to?: number }
  /** CPU time this process has used so far (process.cpuUsage), to compare the servers' cost per request. */
  | { cpu: true }
  | { exit: true }

/** When each manifest request came (ms since the epoch). */
const manifestTimes: number[] = []

async function start(msg: Extract<ChildRequest, { start: string }>): Promise<number> {
  if (msg.start === 'instant-registry') {
    const server = createServer({ cert: msg.certPem, key: msg.keyPem }, (req, res) => {
      if (req.url === '/v2/') return res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end()
      if (req.url?.includes('/manifests/') === true) manifestTimes.push(Date.now())
      res
        .writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': `sha256:${'ab'.repeat(32)}`,
          'content-length': '512',
        })
        .end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return (server.address() as AddressInfo).port
  }
  if (msg.start === 'ceiling') {
    const app = Fastify({
      https: { cert: msg.certPem, key: msg.keyPem, minVersion: 'TLSv1.2' },
      bodyLimit: 8 * 1024 * 1024,
    })
    // The same body parser as pullguard's, so the ratio compares everything else.
    useJsonBodyParser(app)
    app.post('/validate', async (request) => {
      const review = request.body as { apiVersion?: string; kind?: string; request?: { uid?: string } }
      return { apiVersion: review.apiVersion, kind: review.kind, response: { uid: review.request?.uid, allowed: true } }
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  }
  // Logging at info, as in production; stdout goes to /dev/null (the parent ignores it).
  const config = parseServeConfig(msg.args, {})
  const serve = await createServe(config, createLogger(config.logLevel), loadKubeConfig(msg.kubeconfigPath))
  await serve.app.listen({ port: 0, host: '127.0.0.1' })
  return (serve.app.server.address() as { port: number }).port
}

// The bench ended (or died): do not outlive it.
process.on('disconnect', () => process.exit(0))

process.on('message', (msg: ChildRequest) => {
  // A clean exit, so --cpu-prof (BENCH_CPU_PROF) can write its profile.
  if ('exit' in msg) process.exit(0)
  if ('manifestRequests' in msg) {
    const { from = 0, to = Number.POSITIVE_INFINITY } = msg
    process.send?.({ manifestRequests: manifestTimes.filter((t) => t >= from && t <= to).length })
    return
  }
  if ('cpu' in msg) {
    process.send?.({ cpu: process.cpuUsage() })
    return
  }
  if ('memory' in msg) {
    globalThis.gc?.()
    process.send?.({ memory: process.memoryUsage() })
    return
  }
  start(msg).then(
    (port) => process.send?.({ port }),
    (err: unknown) => process.send?.({ error: String((err as Error)?.stack ?? err) }),
  )
})
