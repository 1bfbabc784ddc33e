#!/usr/bin/env node
/**
 * Entry point: `pullguard serve` (the webhook), `pullguard check` (manifests in CI) and
 * `pullguard diagnose` (pods already stuck on a pull), `pullguard audit` (workloads whose images
 * would no longer pull). Parses flags
 * and environment into one Config (exit 2 on invalid configuration or input, one line naming the
 * flag or the file), then runs the command.
 */
import { CHECK_USAGE, check } from './check/command.js'
import { InputError } from './check/manifests.js'
import { AUDIT_USAGE, audit } from './audit/command.js'
import { ConfigError, parseServeConfig, TargetError } from './config.js'
import { DIAGNOSE_USAGE, diagnose } from './diagnose/command.js'
import { createLogger } from './log/logger.js'

const USAGE = `usage: pullguard serve [--port N] [--host ADDR] [--tls-cert FILE --tls-key FILE] [--mode enforce|warn]
                       [--on-registry-error allow|deny] [--timeout 8s] [--registry-ca FILE]
                       [--insecure-registry HOST[:PORT]]... [--exempt-namespace NS]... [--exempt-image GLOB]...
                       [--node-docker-config FILE] [--image-credential-provider-config FILE|DIR --image-credential-provider-bin-dir DIR]
                       [--platform OS/ARCH[/VARIANT]]... [--log-level LEVEL]
                       [--audit-interval 0] [--audit-registry-qps 2] [--audit-events true|false]
                       [--containerd-hosts-dir DIR | --registries-conf FILE] [--registry-concurrency 8]
${CHECK_USAGE}
${DIAGNOSE_USAGE}
${AUDIT_USAGE}`

async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n')
    return
  }
  const config = parseServeConfig(argv)
  const logger = createLogger(config.logLevel)
  // Loaded on demand: the Kubernetes client takes about a second to import, which `check` need not pay.
  const { createServe } = await import('./serve.js')
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
    case 'check':
      process.exitCode = await check(rest)
      return
    case 'diagnose':
      process.exitCode = await diagnose(rest)
      return
    case 'audit':
      process.exitCode = await audit(rest)
      return
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
  if (err instanceof ConfigError || err instanceof InputError || err instanceof TargetError) {
    process.stderr.write(`pullguard: ${err.message}\n`)
    process.exit(2)
  }
  process.stderr.write(`pullguard: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
