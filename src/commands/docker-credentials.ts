/**
 * A docker config.json read once by a command: `check`'s --docker-config (the developer's or CI
 * job's credentials, standing in for the nodes'), or --node-docker-config of `diagnose` and
 * `audit`. Its `auths` entries are tried after the pod's pull secrets, with the kubelet's matching
 * rules (the same parser as serve's watched --node-docker-config). Credential helpers (`credsStore`,
 * `credHelpers`) run programs pullguard does not run, so the registries they cover are reported,
 * not silently dropped.
 */
import { readFileSync } from 'node:fs'
import { ConfigError } from './errors.js'
import { displayKey, MAX_DOCKER_CONFIG_LENGTH, parseDockerConfigFile } from '../credentials/docker-config.js'
import type { KeyringEntry } from '../credentials/keyring.js'

export interface DockerCredentials {
  path: string | undefined
  entries: KeyringEntry[]
  /** Registries served by a credential helper; "*" for a `credsStore`. */
  helpers: string[]
}

/** `flag` and `source` name the file in errors and in credential labels (`node docker config` for diagnose). */
export function readDockerCredentials(
  path: string | undefined,
  flag = '--docker-config',
  source = 'docker config',
): DockerCredentials {
  if (path === undefined) return { path, entries: [], helpers: [] }
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(flag, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (text.length > MAX_DOCKER_CONFIG_LENGTH)
    throw new ConfigError(flag, `${path} is larger than ${MAX_DOCKER_CONFIG_LENGTH} characters`)
  const parsed = parseDockerConfigFile(text)
  if (!parsed.ok) throw new ConfigError(flag, `${path}: ${parsed.problem}`)
  const entries = parsed.entries.map((e) => ({
    key: e.key,
    username: e.username,
    password: e.password,
    label: `${source} (key "${displayKey(e.key)}")`,
  }))
  return { path, entries, helpers: parsed.helpers ?? [] }
}

/** --node-docker-config of a command that runs once. */
export function readNodeDockerCredentials(path: string | undefined): DockerCredentials {
  return readDockerCredentials(path, '--node-docker-config', 'node docker config')
}

/** The one line saying which registries' credentials were not used. */
export function helpersNote(creds: DockerCredentials): string | undefined {
  if (creds.helpers.length === 0) return undefined
  const which = creds.helpers
    .map((h) => (h === '*' ? 'credsStore (every registry without an "auths" entry)' : `credHelpers "${h}"`))
    .join(', ')
  return `${creds.path}: credential helpers are not supported, so their credentials were not used: ${which}. Add an "auths" entry (docker login with credsStore unset), or use --from-cluster with the pull secrets.`
}
