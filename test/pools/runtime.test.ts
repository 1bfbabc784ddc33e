// containerRuntimeVersion as nodes report it, and what each runtime does with a schema 1 manifest
// (containerd RELEASES.md: disabled in 2.0, removed in 2.1).
import t from 'tap'
import { formatRuntime, parseRuntime, schema1Support } from '../../src/pools/runtime.js'

t.test('parses containerRuntimeVersion', async (t) => {
  const table: Array<[string, unknown]> = [
    ['containerd://2.1.4', { name: 'containerd', version: [2, 1, 4], raw: 'containerd://2.1.4' }],
    ['containerd://v1.7.27-1', { name: 'containerd', version: [1, 7, 27], raw: 'containerd://v1.7.27-1' }],
    ['cri-o://1.33.2', { name: 'cri-o', version: [1, 33, 2], raw: 'cri-o://1.33.2' }],
    ['containerd://2.0', { name: 'containerd', version: [2, 0, 0], raw: 'containerd://2.0' }],
    ['containerd://devel', { name: 'containerd', version: undefined, raw: 'containerd://devel' }],
    ['', undefined],
    ['containerd 2.1', undefined],
  ]
  for (const [raw, want] of table) t.same(parseRuntime(raw), want, JSON.stringify(raw))
})

t.test('schema 1 by runtime', async (t) => {
  const table: Array<[string, string]> = [
    ['containerd://1.7.27', 'pulled'],
    ['containerd://2.0.5', 'disabled'],
    ['containerd://2.1.0', 'refused'],
    ['containerd://2.4.2', 'refused'],
    ['containerd://3.0.0', 'refused'],
    ['cri-o://1.33.2', 'pulled'],
    ['containerd://devel', 'pulled'],
    ['docker://28.0.1', 'pulled'],
  ]
  for (const [raw, want] of table) t.equal(schema1Support(parseRuntime(raw)), want, raw)
  t.equal(schema1Support(undefined), 'pulled', 'an unknown runtime: never deny on a guess')
  t.equal(formatRuntime(parseRuntime('containerd://v2.1.4-rc.1')!), 'containerd 2.1.4')
})
