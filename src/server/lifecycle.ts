/**
 * Shutting down, the Fastify way, with a bound. app.close():
 * 1. runs the preClose hooks: those added to the app first (pullguard serve's: release the
 *    audit's Lease, so another replica takes over the audit while this one drains), then this
 *    plugin's, which starts the grace period;
 * 2. stops accepting connections and waits for the ones open, whose reviews are still answered
 *    (`return503OnClosing: false`); past the grace period, those still open are cut, so close()
 *    always ends (the API server applies failurePolicy to a review cut so);
 * 3. runs the onClose hooks: the caller's teardown (registry pools, watches, plugins).
 *
 * The grace starts only once the app's own preClose hooks are done: Fastify runs a context's
 * preClose hooks before its children's (lib/hooks.js hookRunnerApplication), and this plugin is a
 * child context.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { Server as HttpsServer } from 'node:https'
import type { Logger } from 'pino'

export function closeWithin(graceMs: number, logger: Logger): FastifyPluginAsync<Record<never, never>, HttpsServer> {
  return async (context) => {
    context.addHook('preClose', async () => {
      const server = context.server
      const timer = setTimeout(() => {
        logger.warn({ graceMs }, 'in-flight reviews did not finish within the grace period')
        server.closeAllConnections()
      }, graceMs)
      // Emitted once the last connection is gone, cut or not.
      server.once('close', () => clearTimeout(timer))
    })
  }
}
