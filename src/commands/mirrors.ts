/**
 * --containerd-hosts-dir or --registries-conf: where the nodes pull from. A node runs one runtime,
 * so both is an error; the files are read and checked at start-up, as the runtime would refuse a
 * broken one when it starts. CRI-O nodes also give their drop-ins (--registries-conf-dir), the
 * aliases cache (--short-name-aliases) and CRI-O's own settings (--crio-config, --crio-config-dir,
 * read once at start-up as CRI-O reads them; --short-name-mode overrides theirs).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { mergeCrioConf, parseCrioConf, type CrioImageSettings } from '../mirrors/crio-conf.js'
import { MirrorConfigError } from '../mirrors/errors.js'
import { MirrorRoutes, type MirrorSource } from '../mirrors/routes.js'
import { createLogger } from '../log/logger.js'
import { ConfigError } from './errors.js'
import type { Picked } from './flags.js'

export interface MirrorFlags {
  hostsDir: Picked
  registriesConf: Picked
  registriesConfDir: Picked
  shortNameAliases: Picked
  shortNameMode: Picked
  crioConfig: Picked
  crioConfigDir: Picked
}

/** The nodes' runtime configuration, read and checked now; `crio`: CRI-O's own settings, when given. */
export function mirrorSource(flags: MirrorFlags): {
  source: MirrorSource | undefined
  crio: CrioImageSettings | undefined
} {
  const { hostsDir, registriesConf } = flags
  if (hostsDir.value !== undefined && registriesConf.value !== undefined) {
    throw new ConfigError(
      hostsDir.source,
      `cannot be combined with ${registriesConf.source}: give the configuration of the runtime your nodes run (containerd or CRI-O)`,
    )
  }
  // Settings only CRI-O nodes have.
  for (const f of [
    flags.registriesConfDir,
    flags.shortNameAliases,
    flags.shortNameMode,
    flags.crioConfig,
    flags.crioConfigDir,
  ])
    if (f.value !== undefined && registriesConf.value === undefined)
      throw new ConfigError(f.source, `is a CRI-O setting: give the nodes' registries.conf with --registries-conf too`)
  const mode = flags.shortNameMode.value
  if (mode !== undefined && mode !== 'enforcing' && mode !== 'disabled')
    throw new ConfigError(
      flags.shortNameMode.source,
      `must be enforcing or disabled (CRI-O's short_name_mode), not ${JSON.stringify(mode)}`,
    )
  const crio = readCrioSettings(flags.crioConfig, flags.crioConfigDir)
  const shortNameMode = mode ?? crio?.shortNameMode
  const source: MirrorSource | undefined =
    hostsDir.value !== undefined
      ? { kind: 'containerd', dir: hostsDir.value }
      : registriesConf.value !== undefined
        ? {
            kind: 'registries-conf',
            file: registriesConf.value,
            ...(flags.registriesConfDir.value === undefined ? {} : { dropInDir: flags.registriesConfDir.value }),
            ...(flags.shortNameAliases.value === undefined ? {} : { aliasesFile: flags.shortNameAliases.value }),
            ...(shortNameMode === undefined ? {} : { shortNameMode }),
          }
        : undefined
  if (source === undefined) return { source, crio }
  openMirrors(source, createLogger('silent', new Writable({ write: (_chunk, _encoding, done) => done() })), {
    watch: false,
    flag: hostsDir.value !== undefined ? hostsDir.source : registriesConf.source,
  })
  return { source, crio }
}

/**
 * crio.conf, then each file of crio.conf.d in name order (CRI-O's own reading order); undefined
 * when neither is given. Either may be missing, as CRI-O starts on its defaults without them.
 */
function readCrioSettings(file: Picked, dir: Picked): CrioImageSettings | undefined {
  if (file.value === undefined && dir.value === undefined) return undefined
  const read = (path: string, flag: string): CrioImageSettings => {
    try {
      return parseCrioConf(path, readFileSync(path, 'utf8'))
    } catch (err) {
      if (err instanceof MirrorConfigError) throw new ConfigError(flag, err.message)
      // CRI-O starts without its main file (its defaults) too.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && path === file.value) return {}
      throw new ConfigError(
        flag,
        `${path}: cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      )
    }
  }
  const files: CrioImageSettings[] = []
  if (file.value !== undefined) files.push(read(file.value, file.source))
  if (dir.value !== undefined) {
    let names: string[]
    try {
      names = readdirSync(dir.value, { withFileTypes: true })
        .filter((d) => d.isFile() || d.isSymbolicLink())
        .map((d) => d.name)
        .sort()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return mergeCrioConf(files)
      throw new ConfigError(
        dir.source,
        `${dir.value}: cannot read the directory: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      )
    }
    for (const name of names) files.push(read(join(dir.value, name), dir.source))
  }
  return mergeCrioConf(files)
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
