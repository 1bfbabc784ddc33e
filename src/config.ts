/**
 * The one typed Config, built once at start-up from flags and environment (flag wins).
 * This is the only module that reads process.env. Invalid input is a ConfigError naming the
 * flag: the CLI prints its message on one line and exits with status 2.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface TlsFiles {
  certPem: string
  keyPem: string
  certPath: string
  keyPath: string
}

export interface ServeConfig {
  port: number
  host: string
  /** Undefined: generate a self-signed pair in memory (development only; logged as a warning). */
  tls: TlsFiles | undefined
  logLevel: LogLevel
}

export class ConfigError extends Error {
  readonly code = 'InvalidConfig'
  constructor(
    readonly flag: string,
    problem: string,
  ) {
    super(`${flag}: ${problem}`)
    this.name = 'ConfigError'
  }
}

type Env = Readonly<Record<string, string | undefined>>

const SERVE_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'log-level': { type: 'string' },
} as const

export function parseServeConfig(argv: readonly string[], env: Env = process.env): ServeConfig {
  let values: Record<string, string | undefined>
  try {
    ;({ values } = parseArgs({ args: [...argv], options: SERVE_OPTIONS, strict: true, allowPositionals: false }))
  } catch (err) {
    throw new ConfigError('serve', (err as Error).message)
  }
  const pick = (flag: keyof typeof SERVE_OPTIONS, envName: string): { value: string | undefined; source: string } => {
    const fromFlag = values[flag]
    if (fromFlag !== undefined) return { value: fromFlag, source: `--${flag}` }
    const fromEnv = env[envName]
    return { value: fromEnv === '' ? undefined : fromEnv, source: envName }
  }

  const port = pick('port', 'PULLGUARD_PORT')
  const host = pick('host', 'PULLGUARD_HOST')
  const cert = pick('tls-cert', 'PULLGUARD_TLS_CERT')
  const key = pick('tls-key', 'PULLGUARD_TLS_KEY')
  const level = pick('log-level', 'PULLGUARD_LOG_LEVEL')

  return {
    port: parsePort(port.value ?? '8443', port.source),
    host: host.value ?? '0.0.0.0',
    tls: readTls(cert, key),
    logLevel: parseLogLevel(level.value ?? 'info', level.source),
  }
}

function parsePort(value: string, source: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new ConfigError(source, `"${value}" is not a port number (0-65535)`)
  return Number(value)
}

function parseLogLevel(value: string, source: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new ConfigError(source, `"${value}" is not one of ${LOG_LEVELS.join(', ')}`)
  return value as LogLevel
}

function readTls(cert: { value: string | undefined; source: string }, key: { value: string | undefined; source: string }): TlsFiles | undefined {
  if (cert.value === undefined && key.value === undefined) return undefined
  if (cert.value === undefined) throw new ConfigError('--tls-cert', 'is required when --tls-key is set')
  if (key.value === undefined) throw new ConfigError('--tls-key', 'is required when --tls-cert is set')
  return { certPem: readPem(cert.value, cert.source), keyPem: readPem(key.value, key.source), certPath: cert.value, keyPath: key.value }
}

export function readPem(path: string, source: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(source, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (!text.includes('-----BEGIN ')) throw new ConfigError(source, `${path} is not a PEM file`)
  return text
}
