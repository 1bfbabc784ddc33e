/**
 * `pullguard diagnose` options, validated once (a ConfigError names the flag; the CLI exits 2).
 * Registry flags mean what they mean for `check`; --node-docker-config what it means for `serve`.
 */
import { CLUSTER_CLI_OPTIONS, clusterCliSettings, type ClusterCliSettings } from '../commands/cluster-flags.js'
import { ConfigError } from '../commands/errors.js'
import { parseFlagTable } from '../commands/flag-table.js'
import type { Env } from '../commands/flags.js'
import { parseNamespace } from '../commands/values.js'

export type DiagnoseTarget =
  /** namespace undefined: the kubeconfig context's namespace, else `default` (as kubectl). */
  | { kind: 'pod'; name: string; namespace: string | undefined }
  | { kind: 'namespace'; namespace: string | undefined }
  | { kind: 'all-namespaces' }

export interface DiagnoseConfig extends ClusterCliSettings {
  target: DiagnoseTarget
}

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

export function parseDiagnoseConfig(argv: readonly string[], env: Env = process.env): DiagnoseConfig {
  const { values, positionals } = parseFlagTable('diagnose', argv, CLUSTER_CLI_OPTIONS, true)
  return {
    target: parseTarget(positionals, values.namespace, values['all-namespaces'] === true),
    ...clusterCliSettings(values, env),
  }
}

function parseTarget(positionals: string[], namespaceFlag: string | undefined, all: boolean): DiagnoseTarget {
  const [what, name, ...extra] = positionals
  if (extra.length > 0) throw new ConfigError('diagnose', `unexpected argument "${extra[0]}"`)
  if (namespaceFlag !== undefined) parseNamespace(namespaceFlag, '--namespace')
  switch (what) {
    case 'pod':
    case 'po':
      if (all) throw new ConfigError('--all-namespaces', 'applies to `diagnose namespace` only')
      if (name === undefined) throw new ConfigError('diagnose pod', 'a pod name is required')
      if (name.length > 253 || !SUBDOMAIN.test(name))
        throw new ConfigError('diagnose pod', `"${name}" is not a pod name`)
      return { kind: 'pod', name, namespace: namespaceFlag }
    case 'namespace':
    case 'ns':
      if (all) {
        if (name !== undefined || namespaceFlag !== undefined)
          throw new ConfigError('--all-namespaces', 'cannot be combined with a namespace')
        return { kind: 'all-namespaces' }
      }
      if (name !== undefined) parseNamespace(name, 'diagnose namespace')
      if (name !== undefined && namespaceFlag !== undefined && name !== namespaceFlag)
        throw new ConfigError('--namespace', `names ${namespaceFlag}, but the argument names ${name}`)
      return { kind: 'namespace', namespace: name ?? namespaceFlag }
    case undefined:
      throw new ConfigError('diagnose', 'what to diagnose is required: `pod NAME` or `namespace [NS]`')
    default:
      throw new ConfigError('diagnose', `unknown target "${what}" (pod NAME, or namespace [NS | --all-namespaces])`)
  }
}
