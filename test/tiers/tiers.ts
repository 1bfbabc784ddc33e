// The test tiers, in the order `npm test` runs them. A test file's tier is the folder it lives in:
// test/<folder>/ for a tier with a folder, and every other folder (the rooms that mirror src/, and
// the few beside them) for the unit tier. A tier says what it needs installed or built; the test
// command (run.ts) installs and builds only that, in the background from its start, so the tiers
// before it run meanwhile. Adding a tier is adding its entry here (and, for convenience, its
// `test:<name>` script in package.json); its packages and Go builds are named in
// test/helpers/ensure-packages.ts and test/cluster/binaries.ts.
import type { ToolsetName } from '../cluster/binaries.js'
import type { PackageName } from '../helpers/ensure-packages.js'

export interface Tier {
  name: string
  /** The folder under test/ that holds the tier's files; none: every file no other tier holds. */
  folder?: string
  /** Debian packages (installed with apt as root when missing; anywhere else the command names them and stops). */
  packages: readonly PackageName[]
  /** Go builds (test/cluster/binaries.ts), cached outside the repository. */
  toolsets: readonly ToolsetName[]
  /**
   * One control plane per tap job, started before the tier and stopped after it: the files use
   * them one after another instead of starting their own (test/cluster/shared-control-plane.ts).
   */
  sharedControlPlanes: boolean
  /** Runs only as root (a kubelet and containerd change mounts, cgroups and sysctls): without it the command stops and says so. */
  root?: boolean
  /** Files run at once (tap's --jobs); without it, package.json's. */
  jobs?: number
}

export const TIERS: readonly Tier[] = [
  // Tests of one room each, needing no process but node (in-process servers only) and nothing installed or built.
  { name: 'unit', packages: [], toolsets: [], sharedControlPlanes: false },
  // pullguard as a whole through its HTTP and CLI surface, against the real registry binary.
  {
    name: 'integration',
    folder: 'integration',
    packages: ['docker-registry'],
    toolsets: [],
    sharedControlPlanes: false,
  },
  // A real etcd and kube-apiserver, kubectl and helm (Go builds), the real registry, promtool,
  // containers-image-ref (a Go build) to compare pullguard's CRI-O answers with containers-image's,
  // krew (a Go build) to validate and install the plugin, and python3's venv for the real pre-commit.
  {
    name: 'e2e',
    folder: 'e2e',
    packages: ['docker-registry', 'prometheus', 'python3-venv'],
    toolsets: ['cluster', 'helm', 'containersImage', 'krew'],
    sharedControlPlanes: true,
  },
  // A real node beside its own control plane: the kubelet and containerd (Go builds) with Debian's
  // runc pull what pullguard admitted (test/cluster/node.ts); one node per machine at a time.
  {
    name: 'node',
    folder: 'node',
    packages: ['docker-registry', 'runc'],
    toolsets: ['cluster', 'helm', 'kubelet', 'containerd'],
    sharedControlPlanes: false,
    root: true,
    // One node per machine: the files take turns (each compares the host before and after its node).
    jobs: 1,
  },
]

/** The tier of a test file, by its path under test/ (`e2e/admission.test.ts`). */
export function tierOf(path: string): Tier {
  const folder = path.split('/')[0]
  const unit = TIERS.find((t) => t.folder === undefined)
  const tier = TIERS.find((t) => t.folder === folder) ?? unit
  if (tier === undefined) throw new Error('TIERS has no tier without a folder: the unit tier holds every other file')
  return tier
}
