import { pino, type Logger } from 'pino'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * Paths that could ever carry a credential are redacted at the logger, as a second line of
 * defence: the code never puts a credential in a log object in the first place.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.auth',
  '*.token',
  '*.access_token',
  '*.identitytoken',
  '*.registrytoken',
]

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { app: 'pullguard' } }
  return destination === undefined ? pino(options) : pino(options, destination as unknown as pino.DestinationStream)
}
