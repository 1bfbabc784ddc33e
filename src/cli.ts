#!/usr/bin/env node
/**
 * Entry point: `pullguard serve`. Parses flags and environment into one Config (exit 2 on
 * invalid configuration, one line naming the flag), then starts the HTTPS server.
 */
import { ConfigError, parseServeConfig } from './config.js'
import { buildServer } from './server/app.js'
import { generateDevCertificate } from './server/dev-certificate.js'
import { createLogger } from './server/logger.js'

const USAGE = `usage: pullguard serve [--port N] [--host ADDR] [--tls-cert FILE --tls-key FILE] [--log-level LEVEL]`

async function serve(argv: string[]): Promise<void> {
  const config = parseServeConfig(argv)
  const logger = createLogger(config.logLevel)
  let tls = config.tls
  if (tls === undefined) {
    logger.warn('no --tls-cert/--tls-key given: serving a self-signed certificate generated in memory (development only)')
    tls = { ...(await generateDevCertificate()), certPath: '(generated)', keyPath: '(generated)' }
  }
  const app = await buildServer({ certPem: tls.certPem, keyPem: tls.keyPem, logger })
  const address = await app.listen({ port: config.port, host: config.host })
  logger.info({ address, port: app.server.address() }, 'pullguard listening')
  const stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down')
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
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
      throw new ConfigError(command, `unknown command\n${USAGE}`)
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
