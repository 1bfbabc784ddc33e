// Builds (once) the kube-apiserver, kubectl, etcd and helm the end-to-end tier uses, or stops at
// once saying what to install. The test command (test/tiers/run.ts) does the same in the background;
// this runs it alone: `node dist/test/cluster/ensure.js`.
import { ClusterBinaryError, ensureClusterBinaries } from './binaries.js'

try {
  const binaries = await ensureClusterBinaries()
  process.stderr.write(`test cluster binaries: ${binaries.kubeApiserver}\n`)
} catch (err) {
  process.stderr.write(`${err instanceof ClusterBinaryError ? err.message : ((err as Error).stack ?? String(err))}\n`)
  process.exitCode = 1
}
