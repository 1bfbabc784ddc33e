/**
 * The disk side of containerd's hosts configuration: which host directory under `--containerd-hosts-dir`
 * applies to a registry (the first of `host_port_`, `host`, `_default` that exists, as containerd's
 * HostDirFromRoot), and its hosts.toml and file names. The parsing is hosts-toml.ts.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { MirrorConfigError } from './errors.js'
import { hostDirCandidates, registryHosts, type HostsFile, type RegistryHost } from './hosts-toml.js'

/** A hosts.toml is a few hundred bytes; anything this large is not one (and is not read whole). */
const MAX_HOSTS_FILE_BYTES = 256 * 1024

function exists(path: string): boolean {
  try {
    statSync(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false
    throw err
  }
}

export function findHostDir(root: string, registry: string): HostsFile | undefined {
  for (const name of hostDirCandidates(registry)) {
    const dir = join(root, name)
    if (!exists(dir)) continue
    let files: string[] = []
    try {
      files = readdirSync(dir)
    } catch {
      // A file where a directory was expected: containerd finds no hosts.toml in it either.
    }
    const file = join(dir, 'hosts.toml')
    let text: string | undefined
    if (files.includes('hosts.toml')) {
      const size = statSync(file).size
      text = size > MAX_HOSTS_FILE_BYTES ? `# larger than ${MAX_HOSTS_FILE_BYTES} bytes\n=` : readFileSync(file, 'utf8')
    }
    return { text, files: files.filter((f) => f !== 'hosts.toml'), dir }
  }
  return undefined
}

/** The hosts a node's containerd asks for `registry`, read from `root` now. */
export function hostsFromDir(root: string, registry: string): { hosts: RegistryHost[]; dir: string | undefined; problem?: MirrorConfigError } {
  const found = findHostDir(root, registry)
  return { ...registryHosts(registry, found), dir: found?.dir }
}
