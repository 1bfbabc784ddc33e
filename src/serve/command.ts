/**
 * `pullguard serve`: the webhook. Parses flags and environment into one ServeConfig (exit 2 on
 * invalid configuration, one line naming the flag), assembles the webhook, listens, and on SIGTERM
 * stops accepting, answers the reviews in flight and exits 0.
 */
import { renderHelp, type CommandHelp } from '../commands/flag-table.js'
import { wantsHelp } from '../commands/flags.js'
import { createLogger } from '../log/logger.js'
import { parseServeConfig, SERVE_OPTIONS } from './config.js'

export const SERVE_HELP: CommandHelp = {
  name: 'serve',
  summary: 'run the validating admission webhook',
  usage: ['serve [flags]'],
  description: [
    "Answers AdmissionReviews on POST /validate over HTTPS: a pod (or a workload's pod template) whose images its nodes could not pull is denied, or allowed with warnings in warn mode, with what is wrong and how to fix it. Every flag can also be set with its PULLGUARD_* variable; a flag wins over its variable.",
  ],
  exitCodes: [
    [0, 'stopped by SIGTERM or SIGINT, in-flight reviews answered'],
    [2, 'a flag or variable that cannot be used (one line naming it)'],
  ],
  examples: [
    [
      'serve with a certificate, enforcing, unverified images allowed',
      'pullguard serve --tls-cert tls.crt --tls-key tls.key',
    ],
    [
      'as the nodes pull: their mirrors and credentials',
      'pullguard serve --tls-cert tls.crt --tls-key tls.key --containerd-hosts-dir /etc/containerd/certs.d --node-docker-config /var/lib/kubelet/config.json',
    ],
  ],
}

/** Runs until a signal; the process exits from the signal handler. */
export async function serve(argv: string[]): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(renderHelp(SERVE_HELP, SERVE_OPTIONS))
    return
  }
  const config = parseServeConfig(argv)
  const logger = createLogger(config.logLevel)
  // Loaded on demand: the Kubernetes client takes about a second to import, which `check` need not pay.
  const { createServe } = await import('./webhook.js')
  const server = await createServe(config, logger)
  await server.app.listen({ port: config.port, host: config.host })
  const address = server.app.server.address()
  logger.info(
    {
      address,
      mode: config.mode,
      onRegistryError: config.onRegistryError,
      timeoutMs: config.timeoutMs,
      insecureRegistries: config.insecureRegistries,
    },
    'pullguard listening',
  )
  // SIGTERM (a rolling update, a node drain): stop accepting, answer the reviews in flight, exit 0.
  const stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down: finishing in-flight reviews')
    server.close().then(
      () => {
        logger.info('stopped')
        logger.flush?.()
        process.exit(0)
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}
