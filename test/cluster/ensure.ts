// Run by `npm test` before tap: builds (once) the kube-apiserver, kubectl and etcd the end-to-end
// and manifest tests use, or stops the test command at once saying what to install.
import { ClusterBinaryError, ensureClusterBinaries } from './binaries.js'

try {
  const binaries = await ensureClusterBinaries()
  process.stderr.write(`test cluster binaries: ${binaries.kubeApiserver}\n`)
} catch (err) {
  process.stderr.write(`${err instanceof ClusterBinaryError ? err.message : (err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
}
