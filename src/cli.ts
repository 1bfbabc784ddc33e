#!/usr/bin/env node
/**
 * Entry point: `pullguard serve`. Parses flags and environment into one Config (exit 2 on
 * invalid configuration, one line naming the flag), then starts the webhook.
 */
import { ConfigError, parseServeConfig } from './config.js'
import { createServe } from './serve.js'
import { createLogger } from './server/logger.js'

const USAGE = `usage: pullguard serve [--port N] [--host ADDR] [--tls-cert FILE --tls-key FILE] [--mode enforce|warn]
                       [--on-registry-error allow|deny] [--timeout 8s] [--registry-ca FILE]
                       [--insecure-registry HOST[:PORT]]... [--exempt-namespace NS]... [--exempt-image GLOB]...
                       [--node-docker-config FILE] [--platform OS/ARCH[/VARIANT]]... [--log-level LEVEL]`

async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n')
    return
  }
  const config = parseServeConfig(argv)
  const logger = createLogger(config.logLevel)
  const server = await createServe(config, logger)
  await server.app.listen({ port: config.port, host: config.host })
  const address = server.app.server.address()
  logger.info({ address, mode: config.mode, onRegistryError: config.onRegistryError, timeoutMs: config.timeoutMs, insecureRegistries: config.insecureRegistries }, 'pullguard listening')
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

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE + '\n')
      if (command === undefined) process.exitCode = 2
      return
    default:
      throw new ConfigError(command, `unknown command (${USAGE.split('\n')[0]})`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`pullguard: ${err.message}\n`)
    process.exit(2)
  }
  process.stderr.write(`pullguard: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
