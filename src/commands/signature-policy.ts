/**
 * --signature-policy, --signature-policy-dir and --registries-d: the nodes' signature policy, as
 * CRI-O applies it (its crio.conf signature_policy and signature_policy_dir are the defaults).
 * CRI-O's alone, so they need --registries-conf; read and checked at start-up. With CRI-O's
 * configuration given (--crio-config, --crio-config-dir), CRI-O's own defaults apply to what the
 * flags leave out, as on the node.
 */
import { existsSync } from 'node:fs'
import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { createLogger } from '../log/logger.js'
import type { CrioImageSettings } from '../mirrors/crio-conf.js'
import { SignaturePolicyError } from '../signatures/errors.js'
import { SignaturePolicies, type SignaturePolicySource } from '../signatures/signature-policies.js'
import { ConfigError } from './errors.js'
import type { Picked } from './flags.js'

/** containers-image's and CRI-O's own defaults. */
const SYSTEM_POLICY = '/etc/containers/policy.json'
const SYSTEM_REGISTRIES_D = '/etc/containers/registries.d'
const CRIO_POLICY_DIR = '/etc/crio/policies'

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
  // With CRI-O's configuration, its defaults: signature_policy "" is the system's policy.json (where
  // mounted), signature_policy_dir is /etc/crio/policies, registries.d the system's.
  const file =
    flags.policy.value ??
    (crio === undefined
      ? undefined
      : ((crio.signaturePolicy || undefined) ?? (existsSync(SYSTEM_POLICY) ? SYSTEM_POLICY : undefined)))
  const dir = flags.dir.value ?? (crio === undefined ? undefined : crio.signaturePolicyDir || CRIO_POLICY_DIR)
  const registriesD =
    flags.registriesD.value ?? (crio !== undefined && existsSync(SYSTEM_REGISTRIES_D) ? SYSTEM_REGISTRIES_D : undefined)
  if (
    file === undefined &&
    (dir === undefined || (crio !== undefined && flags.dir.value === undefined && !existsSync(dir)))
  ) {
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
    ...(registriesD === undefined ? {} : { registriesD }),
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
