import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify'
import type { Server as HttpsServer } from 'node:https'
import type { Logger } from 'pino'
import type { Metrics } from './metrics.js'
import { handleMutation, handleReview, unreadableReview, type Judge, type Pinner } from '../admission/handler.js'
import { MalformedBody, useJsonBodyParser } from './json-body.js'
import { closeWithin } from './lifecycle.js'

/** The app: Fastify over HTTPS. */
export type App = FastifyInstance<HttpsServer>

export interface ServerOptions {
  certPem: string
  keyPem: string
  logger: Logger
  judge: Judge
  /** With --pin-digests: POST /mutate, the mutating webhook that pins pods to verified digests. */
  pinner?: Pinner
  /** /readyz: true once pullguard can serve reviews (the Kubernetes API answered at least once). */
  ready?: () => Promise<boolean>
  metrics?: Metrics
  /**
   * How long app.close() lets reviews in flight finish before it cuts their connections
   * (lifecycle.ts); unset, as long as they take.
   */
  closeGraceMs?: number
}

/**
 * A Pod with its managedFields is at most ~1.5 MiB (etcd's object limit); an UPDATE review carries
 * it twice. 8 MiB leaves room and stops a client from making us parse arbitrary amounts of JSON.
 */
export const BODY_LIMIT_BYTES = 8 * 1024 * 1024

/**
 * The HTTPS server. Built by a function that takes its collaborators, so tests and the CLI build
 * it the same way. The route only decodes and encodes; the decision is the judge's. Not started:
 * the caller adds its own hooks (onClose: its teardown), then listen() or inject() starts it.
 */
export function buildServer(options: ServerOptions): App {
  const app = Fastify<HttpsServer>({
    https: { cert: options.certPem, key: options.keyPem, minVersion: 'TLSv1.2' },
    loggerInstance: options.logger,
    // Health probes every few seconds would drown the decision log at info.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: its only binding is Fastify's request id, while every line we
    // log about a review names the review's uid; a child per review is measurable at API-server rates.
    childLoggerFactory: (logger) => logger,
    bodyLimit: BODY_LIMIT_BYTES,
    // The API server's own deadline is --timeout plus a little; a client that sends slower than
    // this is not the API server.
    requestTimeout: 30_000,
    // While shutting down, reviews still arriving on open connections are answered, not refused
    // with 503 (the API server would apply failurePolicy to them).
    return503OnClosing: false,
  })

  // Malformed JSON, oversized or wrongly typed bodies: a JSON reason with the right 4xx, never a 500.
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    if (status === 500) request.log.error({ err }, 'request failed')
    void reply.code(status).send({
      error: status === 500 ? 'InternalError' : (err.code ?? 'BadRequest'),
      reason: status === 500 ? 'internal error' : err.message,
    })
  })

  // JSON only (no text/plain), parsed by us: see json-body.ts.
  useJsonBodyParser(app)
  if (options.closeGraceMs !== undefined) app.register(closeWithin(options.closeGraceMs, options.logger))

  app.post('/validate', async (request, reply) => {
    const result =
      request.body instanceof MalformedBody
        ? unreadableReview(request.body.reason)
        : await handleReview(request.body, options.judge)
    if (result.status === 400)
      request.log.warn({ uid: result.uid, reason: result.body.reason }, 'malformed AdmissionReview')
    return reply.code(result.status).send(result.body)
  })
  const pinner = options.pinner
  if (pinner !== undefined) {
    app.post('/mutate', async (request, reply) => {
      const result =
        request.body instanceof MalformedBody
          ? unreadableReview(request.body.reason)
          : await handleMutation(request.body, pinner)
      if (result.status === 400)
        request.log.warn({ uid: result.uid, reason: result.body.reason }, 'malformed AdmissionReview')
      return reply.code(result.status).send(result.body)
    })
  }
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const ready = options.ready === undefined ? true : await options.ready()
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'waiting for the Kubernetes API' })
  })
  const metrics = options.metrics
  if (metrics !== undefined) {
    app.get('/metrics', async (_request, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    )
  }
  return app
}
