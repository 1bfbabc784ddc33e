// The test command's first step for the control plane: without Go 1.26+ it stops at once and says
// what to install; with the binaries cached under the module's hash it builds nothing.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { ensureClusterBinaries, moduleHash } from '../../cluster/binaries.js'

const ENSURE = fileURLToPath(new URL('../../cluster/ensure.js', import.meta.url))

async function fakeGo(t: Test, version: string | undefined): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-fake-go-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  if (version !== undefined) {
    await writeFile(
      join(dir, 'go'),
      `#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo ${version} && exit 0\necho "go build must not run" >&2; exit 3\n`,
    )
    await chmod(join(dir, 'go'), 0o755)
  }
  return dir
}

function ensureWith(path: string, cache: string): { status: number | null; stderr: string } {
  const run = spawnSync(process.execPath, [ENSURE], {
    encoding: 'utf8',
    env: { PATH: `${path}:/usr/bin:/bin`, XDG_CACHE_HOME: cache, HOME: cache },
    timeout: 30_000,
  })
  return { status: run.status, stderr: run.stderr }
}

t.test('no go on PATH: the test command stops at once, naming what to install', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'pullguard-cache-'))
  t.teardown(() => rm(cache, { recursive: true, force: true }))
  const path = await fakeGo(t, undefined)
  // /usr/bin may hold a real go on some machines: give PATH only the empty folder and node's own.
  const run = spawnSync(process.execPath, [ENSURE], {
    encoding: 'utf8',
    env: { PATH: path, XDG_CACHE_HOME: cache, HOME: cache },
    timeout: 30_000,
  })
  t.equal(run.status, 1)
  t.match(
    run.stderr,
    'go not found: the end-to-end and node tests build kube-apiserver, etcd, kubectl, helm, the kubelet and containerd from Go modules: install Go 1.26 or newer',
  )
})

t.test('a Go older than 1.26: stops with the version it found', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'pullguard-cache-'))
  t.teardown(() => rm(cache, { recursive: true, force: true }))
  const run = ensureWith(await fakeGo(t, 'go1.25.4'), cache)
  t.equal(run.status, 1)
  t.match(
    run.stderr,
    'go1.25.4 is too old: the end-to-end and node tests build kube-apiserver, etcd, kubectl, helm, the kubelet and containerd from Go modules: install Go 1.26 or newer',
  )
  t.notOk(existsSync(join(cache, 'pullguard', 'test-cluster', moduleHash())), 'nothing was built')
})

t.test('binaries cached under the module hash are used as they are: no go is run', async (t) => {
  const real = await ensureClusterBinaries()
  const cache = join(real.kubectl, '..', '..', '..', '..')
  const run = ensureWith(await fakeGo(t, 'go1.26.0'), cache)
  t.equal(run.status, 0, run.stderr)
  t.match(run.stderr, `test cluster binaries: ${real.kubeApiserver}`)
  t.notMatch(run.stderr, 'building')
})
