/**
 * `pullguard serve`: the webhook. Parses flags and environment into one ServeConfig (exit 2 on
 * invalid configuration, one line naming the flag), assembles the webhook, listens, and on SIGTERM
 * stops accepting, answers the reviews in flight and exits 0.
 */
import { wantsHelp } from '../commands/flags.js'
import { createLogger } from '../log/logger.js'
import { parseServeConfig } from './config.js'

export const SERVE_USAGE = `usage: pullguard serve [--port N] [--host ADDR] [--tls-cert FILE --tls-key FILE] [--mode enforce|warn]
                       [--on-registry-error allow|deny] [--timeout 8s] [--registry-ca FILE]
                       [--insecure-registry HOST[:PORT]]... [--exempt-namespace NS]... [--exempt-image GLOB]...
                       [--node-docker-config FILE] [--image-credential-provider-config FILE|DIR --image-credential-provider-bin-dir DIR]
                       [--platform OS/ARCH[/VARIANT]]... [--log-level LEVEL]
                       [--audit-interval 0] [--audit-registry-qps 2] [--audit-events true|false]
                       [--containerd-hosts-dir DIR | --registries-conf FILE [--registries-conf-dir DIR] [--short-name-aliases FILE] [--short-name-mode enforcing|disabled] [--crio-config FILE] [--crio-config-dir DIR] [--signature-policy FILE] [--signature-policy-dir DIR] [--registries-d DIR]] [--registry-concurrency 8]
                       [--node-pools FILE] [--image-pull-credentials-verification-policy POLICY [--preloaded-images-verification-allowlist NAME]...]`

/** Runs until a signal; the process exits from the signal handler. */
export async function serve(argv: string[]): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(SERVE_USAGE + '\n')
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
