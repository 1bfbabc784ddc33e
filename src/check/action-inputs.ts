/**
 * The GitHub Action's inputs → `pullguard check` arguments. The runner hands `with:` over as
 * INPUT_<NAME> variables (upper case, hyphens kept, as for every action); action.yml declares the
 * same names. A docker config given as content is returned apart: the entry writes it to a file.
 */
import { ConfigError } from '../commands/errors.js'
import type { Env } from '../commands/flags.js'

/** What a workflow's `with:` can say, by input name. */
export const ACTION_INPUTS = [
  'paths',
  'docker-config',
  'docker-config-json',
  'mode',
  'fail-on-unverified',
  'args',
] as const
export type ActionInput = (typeof ACTION_INPUTS)[number]

export interface ActionCheck {
  /** `check …` with every flag but --docker-config for content (see dockerConfigJson). */
  argv: string[]
  /** docker-config-json's content, to be written to a file named with --docker-config. */
  dockerConfigJson: string | undefined
}

export function actionCheck(env: Env): ActionCheck {
  const input = (name: ActionInput): string => (env[`INPUT_${name.toUpperCase()}`] ?? '').trim()
  const paths = words(input('paths'))
  if (paths.length === 0) throw new ConfigError('input paths', 'give at least one file or directory')
  const argv = ['check', ...paths, '--output', 'github']
  const mode = input('mode')
  if (mode !== '') argv.push('--mode', mode)
  if (booleanInput('fail-on-unverified', input('fail-on-unverified'))) argv.push('--on-registry-error', 'deny')
  const json = input('docker-config-json')
  const path = input('docker-config')
  if (json !== '' && path !== '')
    throw new ConfigError('inputs docker-config and docker-config-json', 'give one, not both')
  if (path !== '') argv.push('--docker-config', path)
  argv.push(...words(input('args')))
  return { argv, dockerConfigJson: json === '' ? undefined : json }
}

/** The YAML 1.2 core booleans, as @actions/core's getBooleanInput reads them; empty is false. */
function booleanInput(name: ActionInput, value: string): boolean {
  if (['true', 'True', 'TRUE'].includes(value)) return true
  if (['false', 'False', 'FALSE', ''].includes(value)) return false
  throw new ConfigError(`input ${name}`, `"${value}" is not true or false`)
}

/** Words separated by white space or new lines; no shell quoting. */
function words(value: string): string[] {
  return value.split(/\s+/).filter((w) => w !== '')
}
