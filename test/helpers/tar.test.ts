// The test images' layers: GNU tar reads back exactly the files, modes and sizes written (block
// boundaries included), and the same files always make the same bytes (a stable diff_id).
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { tarArchive, type TarFile } from './tar.js'

const cases: Array<[string, TarFile[]]> = [
  ['no files', []],
  ['an empty file', [{ name: 'empty', data: Buffer.alloc(0) }]],
  ['exactly one block', [{ name: 'block', data: Buffer.alloc(512, 7) }]],
  ['one byte past a block, executable', [{ name: 'pause', data: Buffer.alloc(513, 1), mode: 0o755 }]],
  [
    'several, in a folder',
    [
      { name: 'etc/hostname', data: Buffer.from('node\n') },
      { name: 'bin/app', data: Buffer.from('#!/bin/sh\n'), mode: 0o700 },
    ],
  ],
]

for (const [name, files] of cases) {
  t.test(name, async (t) => {
    const archive = tarArchive(files)
    t.equal(archive.length % 512, 0, 'whole blocks')
    t.same(tarArchive(files), archive, 'the same bytes every time')
    const dir = mkdtempSync(join(tmpdir(), 'pullguard-tar-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'layer.tar'), archive)
    const list = spawnSync('tar', ['-tf', 'layer.tar'], { cwd: dir, encoding: 'utf8' })
    t.equal(list.status, 0, list.stderr)
    t.same(
      list.stdout.split('\n').filter(Boolean),
      files.map((f) => f.name),
    )
    const out = join(dir, 'out')
    spawnSync('mkdir', [out])
    // Folders a layer does not list are made by whoever unpacks it, as a runtime's unpacker does.
    const x = spawnSync('tar', ['-xf', '../layer.tar'], { cwd: out, encoding: 'utf8' })
    t.equal(x.status, 0, x.stderr)
    for (const f of files) {
      t.same(readFileSync(join(out, f.name)), f.data, `${f.name}: its bytes`)
      t.equal(statSync(join(out, f.name)).mode & 0o777, f.mode ?? 0o644, `${f.name}: its mode`)
    }
  })
}
