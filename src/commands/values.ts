/**
 * Flag values every command may take, parsed and checked once at start-up: a ConfigError names the
 * flag or variable the user wrote.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseGoDuration } from '../go/duration.js'
import { parsePlatform } from '../policy/platforms.js'
import type { Platform } from '../registry/index.js'
import { ConfigError } from './errors.js'
import type { Env, Picked, PickedList } from './flags.js'

/**
 * `500ms`, `8s`, `1m30s`, `1.5s`, `1h`: Go's duration syntax, as the kubelet's and pullguard's
 * configuration files write them; negative durations mean nothing for a flag.
 */
export function parseDuration(value: string, source: string): number {
  const parsed = parseGoDuration(value)
  if (!parsed.ok || parsed.ms < 0 || value === '0')
    throw new ConfigError(source, `"${value}" is not a duration (examples: 500ms, 8s, 1m, 1h)`)
  return Math.round(parsed.ms)
}

/**
 * Per image, a check may retry, follow redirects and fetch a token; a minute covers a slow
 * registry behind a slow proxy, and beyond that a CI job is better told "unknown" than kept waiting.
 */
export const MAX_CHECK_TIMEOUT_MS = 60_000
const MIN_CHECK_TIMEOUT_MS = 100

/** --timeout of check, diagnose and audit: per image, so it may exceed serve's 29 s review budget. */
export function perImageTimeout(picked: Picked): number {
  const value = picked.value ?? '8s'
  const ms = parseDuration(value, picked.source)
  if (ms < MIN_CHECK_TIMEOUT_MS || ms > MAX_CHECK_TIMEOUT_MS)
    throw new ConfigError(picked.source, `${value} is outside 100ms..60s (per image)`)
  return ms
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/

/** A DNS-1123 label, as namespace names are. */
export function parseNamespace(value: string, source: string): string {
  if (!NAMESPACE.test(value)) throw new ConfigError(source, `"${value}" is not a namespace name`)
  return value
}

/** host[:port] as written in image references: no scheme, no path. */
export function parseRegistryHost(value: string, source: string): string {
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(value)) {
    throw new ConfigError(source, `"${value}" is not a registry host[:port] (no scheme or path)`)
  }
  return value
}

/** --insecure-registry: host[:port] each. */
export function insecureRegistries(picked: PickedList): string[] {
  return picked.list.map((h) => parseRegistryHost(h, picked.source))
}

/** --platform: os/arch[/variant] each. */
export function platformList(picked: PickedList): Platform[] {
  return picked.list.map((p) => {
    try {
      return parsePlatform(p)
    } catch (err) {
      throw new ConfigError(picked.source, (err as Error).message)
    }
  })
}

export const DEFAULT_REGISTRY_CONCURRENCY = 8
/** More than this many requests at once to one registry is a load test, not a check. */
const MAX_REGISTRY_CONCURRENCY = 256

/** --registry-concurrency: requests in flight per registry host. */
export function registryConcurrency(picked: Picked): number {
  if (picked.value === undefined) return DEFAULT_REGISTRY_CONCURRENCY
  const n = Number(picked.value)
  if (!Number.isInteger(n) || n < 1 || n > MAX_REGISTRY_CONCURRENCY)
    throw new ConfigError(
      picked.source,
      `${picked.value} is not a whole number of requests between 1 and ${MAX_REGISTRY_CONCURRENCY}`,
    )
  return n
}

export const DEFAULT_AUDIT_QPS = 2

/** --audit-registry-qps: requests a second per registry host for the audit (default 2). */
export function auditQps(picked: Picked): number {
  if (picked.value === undefined) return DEFAULT_AUDIT_QPS
  const qps = Number(picked.value)
  if (!Number.isFinite(qps) || qps < 0.01 || qps > 100)
    throw new ConfigError(picked.source, `${picked.value} is not a rate between 0.01 and 100 requests a second`)
  return qps
}

/** --registry-ca: the PEM bundle, read and checked now. */
export function registryCa(picked: Picked): string | undefined {
  return picked.value === undefined ? undefined : readCertificates(picked.value, picked.source)
}

/** NODE_EXTRA_CA_CERTS, re-read because passing our own CA list makes Node drop it. */
export function nodeExtraCaCerts(env: Env): string | undefined {
  return env.NODE_EXTRA_CA_CERTS === '' ? undefined : env.NODE_EXTRA_CA_CERTS
}

export function readCertificates(path: string, source: string): string {
  const text = readPem(path, source)
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new ConfigError(source, `${path} holds no PEM certificate`)
  blocks.forEach((pem, i) => {
    try {
      new X509Certificate(pem)
    } catch {
      throw new ConfigError(source, `certificate ${i + 1} in ${path} cannot be parsed`)
    }
  })
  return text
}

export function readPem(path: string, source: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(
      source,
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  if (!text.includes('-----BEGIN ')) throw new ConfigError(source, `${path} is not a PEM file`)
  return text
}
