// A memory cgroup with the Deployment's limit, for the bench's pullguard: Node sizes its heap from
// the memory it may use (uv_get_constrained_memory), so on a big host without a limit V8 keeps a
// young generation of 32 MB where the pod, limited to 512 MiB, keeps 2 MB. Measured so, RSS would
// say more about the host than about pullguard. Needs root and a writable cgroup v2 or v1 memory
// controller; without them the bench says so and measures unconstrained.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface MemoryCgroup {
  /** Where a process writes its pid to join (before exec: V8's limits are set at start). */
  procs: string
  /** What was made, for the bench's report. */
  description: string
  /** Removes the cgroup (once its processes have ended). */
  remove(): Promise<void>
}

export function memoryCgroup(name: string, limitBytes: number): MemoryCgroup | { unavailable: string } {
  try {
    const v2 = '/sys/fs/cgroup'
    if (
      existsSync(join(v2, 'cgroup.controllers')) &&
      readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')
    ) {
      const dir = join(v2, name)
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'memory.max'), String(limitBytes))
      return made(dir, `cgroup v2 memory.max ${limitBytes}`)
    }
    const v1 = '/sys/fs/cgroup/memory'
    if (existsSync(join(v1, 'memory.limit_in_bytes'))) {
      const dir = join(v1, name)
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes))
      return made(dir, `cgroup v1 memory.limit_in_bytes ${limitBytes}`)
    }
    return { unavailable: 'no cgroup memory controller here' }
  } catch (err) {
    return { unavailable: `cannot make a memory cgroup: ${err instanceof Error ? err.message : String(err)}` }
  }
}

function made(dir: string, description: string): MemoryCgroup {
  return {
    procs: join(dir, 'cgroup.procs'),
    description,
    remove: async () => {
      // A process that just exited can hold its cgroup for a moment longer.
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          rmdirSync(dir)
          return
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
          await new Promise((r) => setTimeout(r, 100))
        }
      }
    },
  }
}

/** `command args…` started inside the cgroup: a shell joins it, then execs (same pid). */
export function inCgroup(
  cgroup: MemoryCgroup,
  command: string,
  args: readonly string[],
): { command: string; args: string[] } {
  return { command: '/bin/sh', args: ['-c', 'echo $$ > "$0" && exec "$@"', cgroup.procs, command, ...args] }
}
