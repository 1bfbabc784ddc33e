// `BENCH_PHASES=pools npm run bench`: what each node pool's files cost in memory before any answer
// (README, Node pools). A child process with --expose-gc opens N pools through the same code serve
// uses (openNodePools), with their files read and watched, and reports the heap they added.
import { fork } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

type Report = (name: string, value: string, target?: string) => void

const POOLS = 20
const HOSTS_PER_POOL = 10
const AUTHS_PER_POOL = 20

/** Writes N pools' files (own hosts dir or not) and the pools file; returns its path. */
function poolFiles(dir: string, mirrors: boolean): string {
  let yaml = 'pools:\n'
  for (let i = 0; i < POOLS; i++) {
    const auths = Object.fromEntries(
      Array.from({ length: AUTHS_PER_POOL }, (_, k) => [
        `reg${k}.example`,
        { auth: Buffer.from('u:p').toString('base64') },
      ]),
    )
    mkdirSync(join(dir, `p${i}`), { recursive: true })
    writeFileSync(join(dir, `p${i}`, 'config.json'), JSON.stringify({ auths }))
    yaml += `- name: p${i}\n  nodeLabels: {pool: p${i}}\n  nodeDockerConfig: p${i}/config.json\n`
    if (!mirrors) continue
    for (let h = 0; h < HOSTS_PER_POOL; h++) {
      const host = join(dir, `p${i}`, 'certs.d', `reg${h}.example`)
      mkdirSync(host, { recursive: true })
      writeFileSync(
        join(host, 'hosts.toml'),
        `server = "https://reg${h}.example"\n[host."https://mirror${i}.example"]\n  capabilities = ["pull", "resolve"]\n`,
      )
    }
    yaml += `  containerdHostsDir: p${i}/certs.d\n`
  }
  const file = join(dir, 'pools.yaml')
  writeFileSync(file, yaml)
  return file
}

function measure(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./pools-child.js', import.meta.url)), [file], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    })
    child.on('message', (m) => resolve((m as { bytes: number }).bytes))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`pools-child exited ${code}`))
    })
  })
}

export async function poolsPhase(report: Report): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pullguard-bench-pools-'))
  try {
    const own = await measure(poolFiles(join(dir, 'own'), true))
    report(
      `node pools: heap per pool with its own hosts dir (${HOSTS_PER_POOL} hosts.toml, ${AUTHS_PER_POOL}-entry docker config), ${POOLS} pools`,
      `${(own / 1024 / POOLS).toFixed(0)} KiB`,
      '<= 512 KiB',
    )
    const shared = await measure(poolFiles(join(dir, 'shared'), false))
    report(
      `node pools: heap per pool with a docker config only, ${POOLS} pools`,
      `${(shared / 1024 / POOLS).toFixed(0)} KiB`,
      '<= 64 KiB',
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
