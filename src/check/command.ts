/**
 * `pullguard check -f PATH…`: reads manifests, checks every image the way the webhook would, prints
 * a report and sets the exit status (see report.ts). Usage and input problems throw ConfigError or
 * InputError; the CLI prints them on one line and exits 2.
 */
import { appendFileSync, readFileSync } from 'node:fs'
import { userCluster } from '../commands/cluster.js'
import { helpersNote, readDockerCredentials, type DockerCredentials } from '../commands/docker-credentials.js'
import { renderHelp, type CommandHelp } from '../commands/flag-table.js'
import { wantsHelp } from '../commands/flags.js'
import { createLogger } from '../log/logger.js'
import { progressLine } from '../log/progress.js'
import { CHECK_OPTIONS, parseCheckConfig } from './config.js'
import { pinsFor } from '../policy/pins.js'
import { readDocuments, toStream } from './manifests.js'
import { manifestObjects, pinInDocument, type CheckObject } from './objects.js'
import { programVersion } from '../commands/program.js'
import type { CheckConfig } from './config.js'
import { renderJobSummary } from './job-summary.js'
import { renderJunit } from './junit.js'
import { buildReport, renderJson, renderTable, type CheckReport } from './report.js'
import { renderSarif } from './sarif.js'
import { renderWorkflowCommands, withoutCommands } from './workflow-commands.js'
import { runCheck, type CheckedObject, type ClusterSources } from './run.js'

export const CHECK_HELP: CommandHelp = {
  name: 'check',
  summary: 'check the images of manifests before they are applied',
  usage: ['check [-f] FILE|DIR|- … [flags]'],
  description: [
    "Reads Kubernetes manifests (YAML or JSON, several documents, List kinds) and asks each image's registry what the webhook would ask, with the credentials of --docker-config standing for the nodes' (or, with --from-cluster, the pods' own pull secrets). Prints a table, or JSON, SARIF, JUnit XML or GitHub annotations (-o), each finding at the line of its image: field.",
  ],
  exitCodes: [
    [0, 'every image can be pulled (or --mode warn)'],
    [1, 'some image cannot be pulled'],
    [2, 'bad flags or unreadable manifests'],
    [3, 'some image could not be verified, with --on-registry-error deny'],
  ],
  examples: [
    ['a directory of manifests', 'pullguard check k8s/'],
    [
      'a chart as rendered, with the cluster’s pull secrets',
      'helm template my-release ./chart | pullguard check -f - --from-cluster -n team-a',
    ],
    ['for GitHub code scanning', 'pullguard check k8s/ -o sarif > pullguard.sarif'],
  ],
}

export async function check(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(renderHelp(CHECK_HELP, CHECK_OPTIONS))
    return 0
  }
  const config = parseCheckConfig(argv)
  const docker = readDockerCredentials(config.dockerConfigPath)
  const documents = readDocuments(config.inputs, () => readFileSync(0, 'utf8'))
  const { objects, skipped } = manifestObjects(documents, config.namespace)
  const cluster = config.fromCluster ? await clusterSources(config) : undefined
  const progress = progressLine(config.progress, 'objects')
  let checked: CheckedObject[]
  try {
    checked = await runCheck(objects, {
      config,
      docker,
      logger: createLogger('silent'),
      ...(cluster === undefined ? {} : { cluster }),
      onProgress: progress.update,
    })
  } finally {
    progress.done()
  }
  const report = buildReport(checked, {
    notes: notes(config, docker, objects),
    skippedObjects: skipped,
    onRegistryError: config.onRegistryError,
    mode: config.mode,
    stdinName: config.stdinName,
    cwd: process.cwd(),
  })
  if (config.pinDigests) {
    // The manifests pinned where every pool verified the image; the report beside them, on stderr.
    const unwritten: string[] = []
    for (const c of checked) {
      const perPool = c.pools === undefined ? [c.outcomes] : c.pools.map((p) => p.outcomes)
      for (const pin of pinsFor(c.object.subject.images, perPool).pins) {
        if (!pinInDocument(c.object, pin)) {
          const s = c.object.subject
          unwritten.push(
            `note: ${s.kind.toLowerCase()} ${s.namespace}/${s.name} ${pin.use.field}: ${pin.from} is written through an alias, a merge key or an anchor; left as written (${pin.to})`,
          )
        }
      }
    }
    process.stdout.write(toStream(documents))
    process.stderr.write(render(report, config) + unwritten.map((l) => `${l}\n`).join(''))
  } else process.stdout.write(render(report, config))
  if (config.output === 'github' && config.stepSummaryPath !== undefined)
    appendFileSync(config.stepSummaryPath, renderJobSummary(report))
  return report.summary.exitCode
}

function render(report: CheckReport, config: CheckConfig): string {
  switch (config.output) {
    case 'json':
      return renderJson(report)
    case 'sarif':
      return renderSarif(report, { version: programVersion(), cwd: process.cwd() })
    case 'junit':
      return renderJunit(report)
    case 'github':
      // The annotations, then the table for whoever reads the log, which the runner reads as text
      // only: it holds the manifests' own names, which must not pass for workflow commands.
      return renderWorkflowCommands(report) + withoutCommands(renderTable(report))
    case 'table':
      return renderTable(report)
  }
}

function notes(config: CheckConfig, docker: DockerCredentials, objects: readonly CheckObject[]): string[] {
  const out: string[] = []
  if (docker.path === undefined)
    out.push(
      'no docker config found ($DOCKER_CONFIG/config.json, ~/.docker/config.json): registries were asked without credentials unless a pull secret applies',
    )
  const helpers = helpersNote(docker)
  if (helpers !== undefined) out.push(helpers)
  if (!config.fromCluster) {
    const withSecrets = objects.filter((o) => o.subject.pullSecrets.length > 0).length
    if (withSecrets > 0) {
      out.push(
        `pull secrets are not read without --from-cluster: ${withSecrets} object(s) listing imagePullSecrets were checked with the docker config only, and an image those credentials refuse is reported unknown`,
      )
    }
    if (objects.some((o) => o.subject.template && o.subject.pullSecrets.length === 0)) {
      out.push(
        'service accounts are not read without --from-cluster: templates without imagePullSecrets were checked as if their service account added no pull secrets',
      )
    }
  }
  return out
}

/** KUBECONFIG (or --kubeconfig), read only with --from-cluster. */
async function clusterSources(config: CheckConfig): Promise<ClusterSources> {
  return (await userCluster(config.kubeconfigPath, '--from-cluster', config.timeoutMs, config.context)).api
}
