// `BENCH_PHASES=apiserver npm run bench`: Pod CREATEs through a real kube-apiserver (test/cluster)
// at 16 and 100 concurrent clients, with (a) pullguard installed from manifests/base and run as its
// own CLI process, logging at info to a pipe as in a cluster, (b) a bare always-allow Fastify webhook
// (same TLS, registered by the same ValidatingWebhookConfiguration), (c) no webhook.
//
// Method: every side has namespaces of its own (each webhook's namespaceSelector picks its side's
// label, so both configurations stay in force and nothing waits for the API server to notice a
// change); 20 warm-up creates, then CREATES_PER_RUN creates of a Pod with two images that exist;
// sides interleaved a b c c b a a b c, three runs each, medians reported (the API server slows as pods pile up, so a fixed order would bias
// the result). CPU per pod from /proc of each process.
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { createNamespace, startControlPlane, type ControlPlane } from '../cluster/control-plane.js'
import { installPullguard, renderBase, startPullguard, type PullguardProcess } from '../cluster/pullguard.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'
import type { ChildRequest } from './server-child.js'

const CONCURRENCIES = [16, 100]
const CREATES_PER_RUN = Number(process.env.BENCH_APISERVER_CREATES ?? 1500)
const WARMUP = 20
type Side = 'pullguard' | 'bare' | 'none'
const ORDER: Side[] = ['pullguard', 'bare', 'none', 'none', 'bare', 'pullguard', 'pullguard', 'bare', 'none']

interface Run {
  rps: number
  avg: number
  p99: number
  cpuPerPod: Partial<Record<'pullguard' | 'bare' | 'apiserver', number>>
}

/** utime + stime of a process, in microseconds (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN
}

async function bareWebhook(certPem: string, keyPem: string): Promise<{ child: ChildProcess; port: number }> {
  const profile =
    process.env['BENCH_CPU_PROF'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROF']}`]
  const child = fork(fileURLToPath(new URL('./server-child.js', import.meta.url)), [], {
    execArgv: profile,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port?: number; error?: string }) =>
      m.port !== undefined ? resolve({ child, port: m.port }) : reject(new Error(m.error)),
    )
    child.send({ start: 'ceiling', certPem, keyPem } satisfies ChildRequest)
  })
}

export async function apiserverPhase(report: (name: string, value: string, target?: string) => void): Promise<void> {
  const registryCa = await createTestCA('bench registry CA')
  const registry = await startRegistry({ ca: registryCa, auth: { kind: 'none' } })
  for (const [repo, tag] of [
    ['team/api', '1.0'],
    ['team/sidecar', '2.0'],
  ] as const)
    await seedOciManifest(registry, repo, tag)
  const images = [`${registry.host}/team/api:1.0`, `${registry.host}/team/sidecar:2.0`]
  const cp = await startControlPlane()
  let pullguard: PullguardProcess | undefined
  let bare: { child: ChildProcess; port: number } | undefined
  try {
    // (a) pullguard as a user installs it, its webhook limited to the namespaces of its side.
    const installed = await installPullguard(cp)
    // BENCH_AUDIT=1: the background audit runs throughout, over every pod the runs create (bare
    // pods are audited), at 50 requests a second to the registry: do reviews wait for it?
    const audit = process.env['BENCH_AUDIT'] === '1' ? ['--audit-interval', '10s', '--audit-registry-qps', '50'] : []
    pullguard = await startPullguard(cp, {
      ...installed,
      args: ['--registry-ca', registryCa.caPath, '--log-level', 'info', ...audit],
      discardOutput: true,
      // BENCH_CPU_PROF=DIR: a CPU profile of the pullguard process, written when it stops.
      ...(process.env['BENCH_CPU_PROF'] === undefined
        ? {}
        : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROF']}`] }),
    })
    await selectSide(cp, 'pullguard', 'pullguard')
    // (b) the bare webhook, registered by a copy of the same configuration.
    const cert = await cp.ca.issue('bare webhook', { ips: ['127.0.0.1'] })
    bare = await bareWebhook(cert.certPem, cert.keyPem)
    const vwc = (await renderBase(cp)).find((o) => o.kind === 'ValidatingWebhookConfiguration') as {
      metadata: { name: string }
      webhooks: Array<Record<string, unknown>>
    }
    vwc.metadata.name = 'bare'
    const hook = vwc.webhooks[0]!
    hook['name'] = 'bare.bench.pullguard.io'
    hook['clientConfig'] = {
      url: `https://127.0.0.1:${bare.port}/validate`,
      caBundle: Buffer.from(cp.ca.caPem).toString('base64'),
    }
    await cp.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(vwc) })
    await selectSide(cp, 'bare', 'bare')
    // The API server reads webhook configurations through an informer: give it a moment.
    await new Promise((r) => setTimeout(r, 3_000))

    const pool = new Pool(cp.server, { connections: 128, pipelining: 1, connect: { ca: cp.ca.caPem } })
    const token = JSON.parse(readFileSync(cp.adminKubeconfig, 'utf8')).users[0].user.token as string
    const pids = { pullguard: pullguard.child.process.pid!, bare: bare.child.pid!, apiserver: cp.apiserverPid }
    let namespaces = 0
    const run = async (side: Side, concurrency: number, creates: number): Promise<Run> => {
      const ns = `bench-${side}-${++namespaces}`
      await createNamespace(cp, ns)
      await cp.kubectlOk(['label', 'namespace', ns, `bench-side=${side}`])
      const body = (i: number): string =>
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `p-${i}`, namespace: ns },
          spec: { containers: images.map((image, c) => ({ name: `c${c}`, image })), restartPolicy: 'Never' },
        })
      const latencies: number[] = []
      let next = 0
      let failed = 0
      const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMicros(pid)]))
      const started = performance.now()
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = next++; i < creates; i = next++) {
            const t0 = performance.now()
            const res = await pool.request({
              method: 'POST',
              path: `/api/v1/namespaces/${ns}/pods`,
              body: body(i),
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            })
            await res.body.dump()
            if (res.statusCode !== 201) failed++
            latencies.push(performance.now() - t0)
          }
        }),
      )
      const seconds = (performance.now() - started) / 1000
      if (failed > 0) throw new Error(`${failed} of ${creates} creates failed on side ${side}`)
      const cpuPerPod = Object.fromEntries(
        Object.entries(pids).map(([k, pid]) => [k, (cpuMicros(pid) - (cpuBefore[k] ?? 0)) / creates]),
      )
      return {
        rps: creates / seconds,
        avg: latencies.reduce((a, b) => a + b, 0) / latencies.length,
        p99: percentile(latencies, 0.99),
        cpuPerPod,
      }
    }
    // Warm-up: the API server's and webhooks' connections, pullguard's registry answers.
    for (const side of ['pullguard', 'bare', 'none'] as const) await run(side, 4, WARMUP)
    for (const concurrency of CONCURRENCIES) {
      const runs: Record<Side, Run[]> = { pullguard: [], bare: [], none: [] }
      // A discarded run at this concurrency first: the first measured run was the slowest of its side.
      for (const side of ['pullguard', 'bare'] as const) await run(side, concurrency, Math.floor(CREATES_PER_RUN / 3))
      for (const side of ORDER) runs[side].push(await run(side, concurrency, CREATES_PER_RUN))
      // Medians: on 2 cores one run in three is disturbed by something (GC, etcd compaction).
      const mean = (side: Side, f: (r: Run) => number): number => percentile(runs[side].map(f), 0.5)
      const cpu = (side: Side, who: 'pullguard' | 'bare' | 'apiserver'): string =>
        `${Math.round(mean(side, (r) => r.cpuPerPod[who] ?? 0))} µs`
      for (const side of ['pullguard', 'bare', 'none'] as const) {
        const own = side === 'none' ? '' : `, webhook CPU ${cpu(side, side)}/pod`
        report(
          `apiserver ${concurrency} clients: ${side === 'none' ? 'no webhook' : side === 'bare' ? 'bare webhook' : 'pullguard'}`,
          `${Math.round(mean(side, (r) => r.rps))} pods/s, avg ${mean(side, (r) => r.avg).toFixed(1)} ms, p99 ${mean(side, (r) => r.p99).toFixed(1)} ms${own}, kube-apiserver CPU ${cpu(side, 'apiserver')}/pod (runs: ${runs[side].map((r) => Math.round(r.rps)).join(', ')} pods/s)`,
        )
      }
      report(
        `apiserver ${concurrency} clients: pullguard / bare throughput`,
        (mean('pullguard', (r) => r.rps) / mean('bare', (r) => r.rps)).toFixed(2),
        '>= 0.9',
      )
      report(
        `apiserver ${concurrency} clients: p99 added by pullguard over bare`,
        `${(mean('pullguard', (r) => r.p99) - mean('bare', (r) => r.p99)).toFixed(1)} ms`,
        '<= 5 ms',
      )
    }
    await pool.close()
    // Each side's creates really went through its webhook (none silently failed open).
    const metrics = await cp.kubectlOk(['get', '--raw', '/metrics'])
    for (const name of ['pullguard.pullguard.io', 'bare.bench.pullguard.io']) {
      const calls = [
        ...metrics.matchAll(
          new RegExp(
            `^apiserver_admission_webhook_request_total\\{[^}]*name="${name.replaceAll('.', '\\.')}"[^}]*rejected="false"[^}]*\\} (\\d+)`,
            'gm',
          ),
        ),
      ].reduce((n, m) => n + Number(m[1]), 0)
      const expected = CONCURRENCIES.length * 3 * CREATES_PER_RUN
      if (calls < expected)
        throw new Error(`${name} answered ${calls} creates, fewer than the ${expected} sent to its side`)
      const failedOpen = /^apiserver_admission_webhook_fail_open_count\{[^}]*\} [1-9]/m.test(metrics)
      if (failedOpen) throw new Error('the API server failed open on a webhook during the runs')
    }
  } finally {
    // A clean exit, so a profile (BENCH_CPU_PROF) is written.
    bare?.child.send({ exit: true } satisfies ChildRequest)
    // The API server first: pullguard then stops at once (and writes its profile, if asked).
    await cp.close()
    await pullguard?.stop()
    await registry.close()
    await registryCa.close()
  }
}

/** Limits a webhook configuration to the namespaces labelled `bench-side=SIDE`. */
async function selectSide(cp: ControlPlane, vwc: string, side: Side): Promise<void> {
  const patch = [
    {
      op: 'add',
      path: '/webhooks/0/namespaceSelector/matchExpressions/-',
      value: { key: 'bench-side', operator: 'In', values: [side] },
    },
  ]
  await cp.kubectlOk(['patch', 'validatingwebhookconfiguration', vwc, '--type=json', '-p', JSON.stringify(patch)])
}
