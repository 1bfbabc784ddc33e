/**
 * validateCredentialProviderConfig (kubelet pkg/credentialprovider/plugin/config.go, v1.37), with
 * the KubeletServiceAccountTokenForCredentialProviders gate on (beta, on by default since 1.34).
 * Checks run per provider in the kubelet's order and every error is kept; field paths carry no
 * index (`providers.name`), as the kubelet prints them. Pure: table-tested with its vectors.
 */
import { parseHttpUrl } from '../go/url.js'
import type { ProviderSpec } from './spec.js'
import { formatGoDuration } from '../go/duration.js'

const q = JSON.stringify

/** The exec API versions a provider may name (the plugin's request and response use it). */
export const EXEC_API_VERSIONS = [
  'credentialprovider.kubelet.k8s.io/v1',
  'credentialprovider.kubelet.k8s.io/v1alpha1',
  'credentialprovider.kubelet.k8s.io/v1beta1',
] as const

export function validateProviders(providers: readonly ProviderSpec[]): string[] {
  const errors: string[] = []
  if (providers.length === 0) errors.push('providers: Required value: at least 1 item in plugins is required')
  const seen = new Set<string>()
  for (const p of providers) {
    if (p.name.includes('/'))
      errors.push(`providers.name: Invalid value: ${q(p.name)}: provider name cannot contain '/'`)
    if (p.name.includes(' '))
      errors.push(`providers.name: Invalid value: ${q(p.name)}: provider name cannot contain spaces`)
    if (p.name === '.') errors.push(`providers.name: Invalid value: ".": provider name cannot be '.'`)
    if (p.name === '..') errors.push(`providers.name: Invalid value: "..": provider name cannot be '..'`)
    if (seen.has(p.name)) errors.push(`providers.name: Duplicate value: ${q(p.name)}`)
    seen.add(p.name)
    if (p.apiVersion === '') errors.push('providers.apiVersion: Required value')
    else if (!(EXEC_API_VERSIONS as readonly string[]).includes(p.apiVersion)) {
      errors.push(
        `providers.apiVersion: Unsupported value: ${q(p.apiVersion)}: supported values: ${EXEC_API_VERSIONS.map((v) => q(v)).join(', ')}`,
      )
    }
    if (p.matchImages.length === 0)
      errors.push('providers.matchImages: Required value: at least 1 item in matchImages is required')
    for (const m of p.matchImages) {
      if (parseHttpUrl(`https://${m}`) === undefined)
        errors.push(
          `providers.matchImages: Invalid value: ${q(m)}: match image is invalid: parse ${q(`https://${m}`)}: not a URL Go's url.Parse accepts`,
        )
    }
    if (p.defaultCacheDurationMs === undefined) errors.push('providers.defaultCacheDuration: Required value')
    else if (p.defaultCacheDurationMs < 0)
      errors.push(
        `providers.defaultCacheDuration: Invalid value: ${q(formatGoDuration(p.defaultCacheDurationMs))}: must be greater than or equal to 0`,
      )
    const ta = p.tokenAttributes
    if (ta === undefined) continue
    if (ta.serviceAccountTokenAudience === '')
      errors.push('providers.tokenAttributes.serviceAccountTokenAudience: Required value')
    if (ta.requireServiceAccount === undefined)
      errors.push('providers.tokenAttributes.requireServiceAccount: Required value')
    if (p.apiVersion !== 'credentialprovider.kubelet.k8s.io/v1')
      errors.push(
        'providers.tokenAttributes: Forbidden: tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1 API version',
      )
    if (ta.requireServiceAccount === false && ta.requiredServiceAccountAnnotationKeys.length > 0) {
      errors.push(
        'providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set',
      )
    }
    for (const [field, keys] of [
      ['requiredServiceAccountAnnotationKeys', ta.requiredServiceAccountAnnotationKeys],
      ['optionalServiceAccountAnnotationKeys', ta.optionalServiceAccountAnnotationKeys],
    ] as const) {
      const dup = new Set<string>()
      for (const k of keys) {
        for (const msg of qualifiedNameErrors(k.toLowerCase()))
          errors.push(`providers.tokenAttributes.${field}: Invalid value: ${q(k)}: ${msg}`)
        if (dup.has(k)) errors.push(`providers.tokenAttributes.${field}: Duplicate value: ${q(k)}`)
        dup.add(k)
      }
    }
    const both = ta.requiredServiceAccountAnnotationKeys.filter((k) =>
      ta.optionalServiceAccountAnnotationKeys.includes(k),
    )
    if (both.length > 0)
      errors.push(
        `providers.tokenAttributes: Invalid value: [${[...new Set(both)]
          .sort()
          .map((k) => q(k))
          .join(',')}]: annotation keys cannot be both required and optional`,
      )
    if (ta.cacheType === '')
      errors.push(
        'providers.tokenAttributes.cacheType: Required value: cacheType is required to be set when tokenAttributes is specified. Supported values are: ServiceAccount, Token',
      )
    else if (ta.cacheType !== 'ServiceAccount' && ta.cacheType !== 'Token')
      errors.push(
        `providers.tokenAttributes.cacheType: Unsupported value: ${q(ta.cacheType)}: supported values: "ServiceAccount", "Token"`,
      )
  }
  return errors
}

// apimachinery validation.IsQualifiedName, its messages as they are.
const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const NAME_PART_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const SUBDOMAIN_MSG =
  "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
const KEY_MSG =
  "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"

export function qualifiedNameErrors(value: string): string[] {
  const parts = value.split('/')
  let name: string
  const errs: string[] = []
  if (parts.length === 1) name = parts[0] ?? ''
  else if (parts.length === 2) {
    const [prefix, n] = parts as [string, string]
    name = n
    if (prefix.length === 0) errs.push('prefix part must be non-empty')
    else if (prefix.length > 253) errs.push('prefix part must be no more than 253 bytes')
    else if (!SUBDOMAIN.test(prefix)) errs.push(SUBDOMAIN_MSG)
  } else return [KEY_MSG]
  if (name.length === 0) errs.push('name part must be non-empty')
  else if (name.length > 63) errs.push('name part must be no more than 63 bytes')
  if (!NAME_PART.test(name)) errs.push(NAME_PART_MSG)
  return errs
}
