/**
 * What pullguard reads from CRI-O's own configuration (crio.conf(5), crio.conf.d(5)): the
 * `[crio.image]` settings that change what a pull does. The main file is read first, then each
 * drop-in in name order; a later file's setting wins. Pure: the caller reads the files.
 */
import { TomlError, parse } from 'smol-toml'
import { MirrorConfigError } from './errors.js'
import type { ShortNameMode } from './short-names.js'

export interface CrioImageSettings {
  /** `short_name_mode`: CRI-O 1.34 and later default to enforcing. */
  shortNameMode?: ShortNameMode
  /** `signature_policy`: the policy file every pull is checked against ('' : the system's policy.json). */
  signaturePolicy?: string
  /** `signature_policy_dir`: `<dir>/<namespace>.json` is a namespace's own policy, where it exists. */
  signaturePolicyDir?: string
}

/** One file's `[crio.image]` settings; throws MirrorConfigError (CrioConfigInvalid) naming the file. */
export function parseCrioConf(file: string, text: string): CrioImageSettings {
  let doc: Record<string, unknown>
  try {
    doc = parse(text) as Record<string, unknown>
  } catch (err) {
    throw new MirrorConfigError(
      'CrioConfigInvalid',
      file,
      err instanceof TomlError ? (err.message.split('\n')[0] ?? 'invalid TOML') : String(err),
    )
  }
  const crio = doc['crio']
  const image = typeof crio === 'object' && crio !== null ? (crio as Record<string, unknown>)['image'] : undefined
  if (image === undefined) return {}
  if (typeof image !== 'object' || image === null || Array.isArray(image))
    throw new MirrorConfigError('CrioConfigInvalid', file, '[crio.image] must be a table')
  const table = image as Record<string, unknown>
  const text_ = (key: string): string | undefined => {
    const v = table[key]
    if (v === undefined) return undefined
    if (typeof v !== 'string') throw new MirrorConfigError('CrioConfigInvalid', file, `${key} must be a string`)
    return v
  }
  const mode = text_('short_name_mode')
  if (mode !== undefined && mode !== 'enforcing' && mode !== 'disabled')
    throw new MirrorConfigError(
      'CrioConfigInvalid',
      file,
      `short_name_mode must be "enforcing" or "disabled", not ${JSON.stringify(mode)}`,
    )
  const policy = text_('signature_policy')
  const policyDir = text_('signature_policy_dir')
  return {
    ...(mode === undefined ? {} : { shortNameMode: mode }),
    ...(policy === undefined ? {} : { signaturePolicy: policy }),
    ...(policyDir === undefined ? {} : { signaturePolicyDir: policyDir }),
  }
}

/** The files' settings merged in reading order: a later file's setting wins. */
export function mergeCrioConf(files: readonly CrioImageSettings[]): CrioImageSettings {
  return Object.assign({}, ...files) as CrioImageSettings
}
