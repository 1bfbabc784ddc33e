/**
 * --containerd-hosts-dir or --registries-conf: where the nodes pull from. A node runs one runtime,
 * so both is an error; the files are read and checked at start-up, as the runtime would refuse a
 * broken one when it starts.
 */
import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { MirrorConfigError } from '../mirrors/errors.js'
import { MirrorRoutes, type MirrorSource } from '../mirrors/routes.js'
import { createLogger } from '../log/logger.js'
import { ConfigError } from './errors.js'
import type { Picked } from './flags.js'

export function mirrorSource(hostsDir: Picked, registriesConf: Picked): MirrorSource | undefined {
  if (hostsDir.value !== undefined && registriesConf.value !== undefined) {
    throw new ConfigError(
      hostsDir.source,
      `cannot be combined with ${registriesConf.source}: give the configuration of the runtime your nodes run (containerd or CRI-O)`,
    )
  }
  const source: MirrorSource | undefined =
    hostsDir.value !== undefined
      ? { kind: 'containerd', dir: hostsDir.value }
      : registriesConf.value !== undefined
        ? { kind: 'registries-conf', file: registriesConf.value }
        : undefined
  if (source === undefined) return undefined
  openMirrors(source, createLogger('silent', new Writable({ write: (_chunk, _encoding, done) => done() })), {
    watch: false,
    flag: hostsDir.value !== undefined ? hostsDir.source : registriesConf.source,
  })
  return source
}

/** The routes, or undefined without mirrors; `watch` (serve): read again when the files change. */
export function openMirrors(
  source: MirrorSource | undefined,
  logger: Logger,
  options: { watch: boolean; flag?: string },
): MirrorRoutes | undefined {
  if (source === undefined) return undefined
  try {
    return new MirrorRoutes(source, logger, { watch: options.watch })
  } catch (err) {
    if (err instanceof MirrorConfigError)
      throw new ConfigError(
        options.flag ?? (source.kind === 'containerd' ? '--containerd-hosts-dir' : '--registries-conf'),
        err.message,
      )
    throw err
  }
}
