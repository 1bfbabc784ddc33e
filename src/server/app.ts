import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'

export interface ServerOptions {
  certPem: string
  keyPem: string
  logger: Logger
}

/**
 * The HTTPS server. Built by a function that takes its collaborators, so tests and the CLI
 * build it the same way (and tests can use `inject`).
 */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    https: { cert: options.certPem, key: options.keyPem, minVersion: 'TLSv1.2' },
    loggerInstance: options.logger,
    // Health probes every few seconds would drown the decision log at info.
    logController: new LogController({ disableRequestLogging: true }),
  })
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async () => ({ status: 'ready' }))
  await app.ready()
  return app as unknown as FastifyInstance
}
