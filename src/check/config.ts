/**
 * `pullguard check` options, validated once (a ConfigError names the flag; the CLI exits 2).
 * The flags it shares with `serve` mean the same thing and are parsed by the same helpers, except
 * --timeout, which here bounds each image rather than a whole admission review.
 */
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../commands/errors.js'
import { CONTEXT_FLAG } from '../commands/cluster-flags.js'
import { parseFlagTable, type FlagTable } from '../commands/flag-table.js'
import { flagsOrEnv, oneOf, pickBoolean, type Env, type Picked } from '../commands/flags.js'
import { PULL_OPTIONS, pullSettings, type PullSettings } from '../commands/pull-flags.js'
import { parseNamespace, perImageTimeout, platformList } from '../commands/values.js'
import type { OnRegistryError } from '../policy/decide.js'
import type { Platform } from '../registry/index.js'

/** `warn`: findings are reported as warnings and never fail the run (the webhook's warn mode). */
export type CheckMode = 'enforce' | 'warn'

export const CHECK_OUTPUTS = ['table', 'json', 'sarif', 'junit', 'github'] as const
export type CheckOutput = (typeof CHECK_OUTPUTS)[number]

export interface CheckConfig extends PullSettings {
  /** Files, directories, or `-` for stdin, in the order given (-f first, then arguments). */
  inputs: string[]
  /** The name findings from stdin are reported under (SARIF, annotations), e.g. where the stream was rendered from. */
  stdinName: string | undefined
  /** Where the docker config is read from; undefined when none was given and the default is absent. */
  dockerConfigPath: string | undefined
  /** True when --docker-config was given: a missing file is then an error, not "no credentials". */
  dockerConfigExplicit: boolean
  fromCluster: boolean
  /** KUBECONFIG for --from-cluster (undefined: the client's defaults). */
  kubeconfigPath: string | undefined
  /** --context for --from-cluster: undefined for the kubeconfig's current one. */
  context: string | undefined
  /** For objects without metadata.namespace. */
  namespace: string
  /** Per image. */
  timeoutMs: number
  platforms: Platform[]
  exemptImages: string[]
  onRegistryError: OnRegistryError
  output: CheckOutput
  mode: CheckMode
  /** --pin-digests: stdout gets the manifests pinned, stderr the report. */
  pinDigests: boolean
  /** Where `--output github` appends the job summary (GITHUB_STEP_SUMMARY). */
  stepSummaryPath: string | undefined
  /** Whether stderr is a terminal (progress line). */
  progress: boolean
}

export const CHECK_OPTIONS = {
  filename: {
    type: 'string',
    short: 'f',
    multiple: true,
    value: 'FILE|DIR|-',
    help: 'manifests to check: a YAML or JSON file, a directory (recursively), or - for stdin; files may also be given as arguments',
  },
  'stdin-name': {
    type: 'string',
    value: 'PATH',
    help: 'the file name findings read from stdin are reported under (SARIF, annotations, JUnit)',
  },
  'docker-config': {
    type: 'string',
    value: 'FILE',
    default: '$DOCKER_CONFIG/config.json, else ~/.docker/config.json',
    help: "credentials standing for the nodes' (docker login's config.json)",
  },
  'from-cluster': {
    type: 'boolean',
    help: 'read pull secrets, service accounts and Nodes from the cluster (KUBECONFIG), as the webhook would',
  },
  kubeconfig: { type: 'string', value: 'FILE', help: 'the kubeconfig for --from-cluster' },
  context: CONTEXT_FLAG,
  namespace: {
    type: 'string',
    short: 'n',
    value: 'NS',
    default: 'default',
    help: 'for objects without metadata.namespace',
  },
  timeout: { type: 'string', value: 'DURATION', default: '8s', help: "each image's budget" },
  platform: {
    type: 'string',
    multiple: true,
    value: 'OS/ARCH[/VARIANT]',
    help: "the cluster's platforms (with --from-cluster, read from the Nodes)",
  },
  'exempt-image': { type: 'string', multiple: true, value: 'GLOB', help: 'images not checked' },
  'on-registry-error': {
    type: 'string',
    value: 'allow|deny',
    default: 'allow',
    help: 'deny: an image whose registry gives no answer fails the run (exit 3)',
  },
  output: {
    type: 'string',
    short: 'o',
    value: CHECK_OUTPUTS.join('|'),
    default: 'table; github when GITHUB_ACTIONS=true',
    help: "the report: sarif (SARIF 2.1.0, for code scanning), junit (JUnit XML), github (workflow annotations on each image's line, and the job summary)",
  },
  'pin-digests': {
    type: 'boolean',
    help: 'print the manifests with each verified image pinned to its digest (name@sha256:…), the report going to stderr',
  },
  mode: {
    type: 'string',
    value: 'enforce|warn',
    default: 'enforce',
    help: 'warn: report every finding as a warning and exit 0, as the webhook allows with warnings',
  },
  ...PULL_OPTIONS,
} as const satisfies FlagTable

export function parseCheckConfig(
  argv: readonly string[],
  env: Env = process.env,
  stderrIsTTY = process.stderr.isTTY === true,
): CheckConfig {
  const { values, positionals } = parseFlagTable('check', argv, CHECK_OPTIONS, true)
  // Arguments are files too: pre-commit and xargs append the file names.
  const inputs = [...(values.filename ?? []), ...positionals]
  if (inputs.length === 0)
    throw new ConfigError('-f/--filename', 'at least one file, directory or - (stdin) is required')
  if (inputs.filter((i) => i === '-').length > 1)
    throw new ConfigError('-f/--filename', '- (stdin) can be given only once')

  const { pick, pickList } = flagsOrEnv(values, env)
  const timeoutMs = perImageTimeout(pick('timeout'))

  const namespace = parseNamespace(values.namespace ?? 'default', '--namespace')
  const platforms = platformList(pickList('platform'))

  return {
    inputs,
    dockerConfigPath: values['docker-config'] ?? defaultDockerConfig(env),
    dockerConfigExplicit: values['docker-config'] !== undefined,
    fromCluster: values['from-cluster'] === true,
    kubeconfigPath: values.kubeconfig,
    context: values.context,
    namespace,
    timeoutMs,
    platforms,
    exemptImages: pickList('exempt-image').list,
    onRegistryError: onRegistryError(pick('on-registry-error')),
    stdinName: values['stdin-name'],
    output: oneOf(values.output ?? (env.GITHUB_ACTIONS === 'true' ? 'github' : 'table'), CHECK_OUTPUTS, '--output'),
    mode: checkMode(pick('mode')),
    pinDigests: pickBoolean(values, env, 'pin-digests'),
    stepSummaryPath:
      env.GITHUB_STEP_SUMMARY === undefined || env.GITHUB_STEP_SUMMARY === '' ? undefined : env.GITHUB_STEP_SUMMARY,
    progress: stderrIsTTY,
    // check's --docker-config is the person's or the CI job's, read apart from the nodes' files.
    ...pullSettings(values, env, { nodeDockerConfigPath: undefined, platforms }),
  }
}

/** The webhook's own modes and variable: PULLGUARD_MODE=warn makes a CI job report without failing. */
function checkMode(picked: Picked): CheckMode {
  return oneOf(picked.value ?? 'enforce', ['enforce', 'warn'] as const, picked.source)
}

function onRegistryError(picked: Picked): OnRegistryError {
  return oneOf(picked.value ?? 'allow', ['allow', 'deny'] as const, picked.source)
}

/** Docker's own lookup: $DOCKER_CONFIG/config.json, else ~/.docker/config.json; only when it exists. */
function defaultDockerConfig(env: Env): string | undefined {
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir()
  const path =
    env.DOCKER_CONFIG !== undefined && env.DOCKER_CONFIG !== ''
      ? join(env.DOCKER_CONFIG, 'config.json')
      : join(home, '.docker', 'config.json')
  return existsSync(path) ? path : undefined
}
