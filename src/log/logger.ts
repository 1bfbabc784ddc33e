import { pino, type Logger } from 'pino'
import { redactSecrets } from './redact.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  // Credentials are redacted at any depth of every logged object (redact.ts).
  const options = { level, formatters: { log: redactSecrets }, base: { app: 'pullguard' } }
  return destination === undefined ? pino(options) : pino(options, destination as unknown as pino.DestinationStream)
}
