// `BENCH_PHASES=tag-list npm run bench`: could the audit answer the tags of one repository in use
// with one tag listing (`/v2/<name>/tags/list`, paged) instead of one manifest check each? Measured
// against the real distribution registry with htpasswd auth: requests counted as undici sends them,
// for k tags in use of a repository holding T tags, both ways, with pullguard's own client.
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { countRequests } from '../helpers/request-counter.js'
import { seedOciIndex, seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { parseReference } from '../../src/reference/index.js'
import { RegistryClient } from '../../src/registry/index.js'

type Report = (name: string, value: string, target?: string) => void

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const ROBOT = { username: 'robot', password: 'robot-pw', label: 'secret bench/regcred (key "registry")' }
/** Tags held by the repository, and how many of them workloads use. */
const SHAPES: ReadonlyArray<{ held: number; inUse: number }> = [
  { held: 40, inUse: 1 },
  { held: 40, inUse: 5 },
  { held: 40, inUse: 30 },
  { held: 1500, inUse: 30 },
]

export async function tagListPhase(report: Report): Promise<void> {
  const ca = await createTestCA('bench tag-list CA')
  const registry = await startRegistry({
    ca,
    auth: { kind: 'htpasswd', users: { admin: ADMIN.password, robot: ROBOT.password } },
  })
  const counter = countRequests()
  try {
    for (const [n, shape] of SHAPES.entries()) {
      const repo = `team/app-${n}`
      // Half of them multi-platform (an index, whose platforms the check reads), as on a real registry.
      for (let i = 0; i < shape.held; i++)
        await (i % 2 === 0
          ? seedOciManifest(registry, repo, `1.${i}`, ADMIN)
          : seedOciIndex(
              registry,
              repo,
              `1.${i}`,
              [
                { os: 'linux', architecture: 'amd64' },
                { os: 'linux', architecture: 'arm64' },
              ],
              ADMIN,
            ))
      const client = new RegistryClient({ trust: { extraCaPem: ca.caPem } })
      try {
        const refs = Array.from({ length: shape.inUse }, (_, i) => parseReference(`${registry.host}/${repo}:1.${i}`))
        counter.reset()
        // The audit's way: one manifest check per tag in use (each with its token-less Basic
        // challenge answered once per host, as pullguard's client does).
        for (const ref of refs) {
          const r = await client.checkManifest(ref, [ROBOT])
          if (r.code !== 'Exists') throw new Error(`${ref.canonical}: ${r.code}`)
        }
        const checks = counter.count(registry.origin)
        counter.reset()
        const tags = await client.listTags(refs[0]!, [ROBOT], { budgetMs: 30_000 })
        const listing = counter.count(registry.origin)
        if (tags === undefined || tags.length !== shape.held)
          throw new Error(`${repo}: the listing gave ${tags?.length}`)
        report(
          `tag list: ${shape.inUse} of ${shape.held} tags of one repository in use`,
          `${checks} requests as manifest checks (${Math.floor(shape.inUse / 2)} of them indexes, whose platforms are read too; the first also answers the Basic challenge), ${listing} as one tag listing; the listing leaves every index's platforms, each manifest's media type and size, and every digest reference unknown`,
        )
      } finally {
        await client.close()
      }
    }
  } finally {
    counter.stop()
    await registry.close()
    await ca.close()
  }
}
