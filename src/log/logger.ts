/**
 * The one logger of every command (serve, check, diagnose take it from here, none from another).
 * Credentials are redacted at any depth of every logged object (redact.ts).
 */
import { pino, type Logger } from 'pino'
import { redactSecrets } from './redact.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * Lines are batched: one write to stdout per BATCH_BYTES (ten or more decision lines), or every
 * FLUSH_MS when traffic is light. A write per decision line to the container runtime's pipe was the
 * largest single cost of a review through a real API server (an eighth of pullguard's busy time
 * on the event loop, synchronous or not). pino writes what is left synchronously when the process
 * exits, so a line is lost only if the process is killed outright.
 */
/** Under sonic-boom's 16 KiB single-write limit. */
const BATCH_BYTES = 12 * 1024
/** How long a line may wait for company: an operator tailing the log sees it within this. */
const FLUSH_MS = 200

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = { level, formatters: { log: redactSecrets }, base: { app: 'pullguard' } }
  if (destination !== undefined) return pino(options, destination as unknown as pino.DestinationStream)
  const stdout = pino.destination({ dest: 1, sync: false, minLength: BATCH_BYTES })
  setInterval(() => stdout.flush(), FLUSH_MS).unref()
  return pino(options, stdout)
}
