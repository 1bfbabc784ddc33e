/**
 * --signature-policy, --signature-policy-dir and --registries-d: the nodes' signature policy, as
 * CRI-O applies it (its crio.conf signature_policy and signature_policy_dir are the defaults).
 * CRI-O's alone, so they need --registries-conf; read and checked at start-up.
 */
import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { createLogger } from '../log/logger.js'
import type { CrioImageSettings } from '../mirrors/crio-conf.js'
import { SignaturePolicyError } from '../signatures/errors.js'
import { SignaturePolicies, type SignaturePolicySource } from '../signatures/signature-policies.js'
import { ConfigError } from './errors.js'
import type { Picked } from './flags.js'

export interface SignatureFlags {
  policy: Picked
  dir: Picked
  registriesD: Picked
  /** --registries-conf: only CRI-O nodes check signatures. */
  registriesConf: Picked
}

/** The files to read, or undefined when no policy is given (nor in CRI-O's configuration). */
export function signaturePolicySource(
  flags: SignatureFlags,
  crio: CrioImageSettings | undefined,
): SignaturePolicySource | undefined {
  for (const f of [flags.policy, flags.dir, flags.registriesD])
    if (f.value !== undefined && flags.registriesConf.value === undefined)
      throw new ConfigError(f.source, `is a CRI-O setting: give the nodes' registries.conf with --registries-conf too`)
  // crio.conf's signature_policy = "" means the system's /etc/containers/policy.json, which is then what --signature-policy names.
  const file = flags.policy.value ?? (crio?.signaturePolicy === '' ? undefined : crio?.signaturePolicy)
  const dir = flags.dir.value ?? (crio?.signaturePolicyDir === '' ? undefined : crio?.signaturePolicyDir)
  if (file === undefined && dir === undefined) {
    if (flags.registriesD.value !== undefined)
      throw new ConfigError(
        flags.registriesD.source,
        'says where signatures are kept: give --signature-policy or --signature-policy-dir too',
      )
    return undefined
  }
  const source: SignaturePolicySource = {
    ...(file === undefined ? {} : { file }),
    ...(dir === undefined ? {} : { dir }),
    ...(flags.registriesD.value === undefined ? {} : { registriesD: flags.registriesD.value }),
  }
  openSignaturePolicies(source, createLogger('silent', new Writable({ write: (_chunk, _encoding, done) => done() })), {
    watch: false,
  })?.close()
  return source
}

/** The policies, or undefined without one; `watch` (serve): read again when the files change. */
export function openSignaturePolicies(
  source: SignaturePolicySource | undefined,
  logger: Logger,
  options: { watch: boolean },
): SignaturePolicies | undefined {
  if (source === undefined) return undefined
  try {
    return new SignaturePolicies(source, logger, options)
  } catch (err) {
    if (err instanceof SignaturePolicyError)
      throw new ConfigError(
        err.code === 'RegistriesDInvalid'
          ? '--registries-d'
          : source.dir !== undefined && err.file.startsWith(source.dir)
            ? '--signature-policy-dir'
            : '--signature-policy',
        err.message,
      )
    throw err
  }
}
