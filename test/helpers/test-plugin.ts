// Credential provider plugins for the suite: one small Node script, written into a bin dir under the
// provider's name and steered by its config `env` (as a real plugin is by its flags):
// PLUGIN_MODE  ok (default) | exit1 | hang | garbage | wrongkind | wrongversion | huge | badkeytype
// PLUGIN_AUTH  JSON of the answer's auth map; PLUGIN_KEY_TYPE, PLUGIN_DURATION the cache fields
// PLUGIN_LOG   a file each request is appended to (one JSON line), to count execs
// PLUGIN_DELAY_MS  wait this long before answering
// PLUGIN_EXPECT_AUDIENCE / PLUGIN_EXPECT_SUBJECT  the request must carry a service-account token (a
//   JWT) for that audience and subject, and PLUGIN_EXPECT_ANNOTATIONS (JSON) exactly; else exit 3
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const SCRIPT = `#!${process.execPath}
const fs = require('node:fs')
let input = ''
process.stdin.on('data', (c) => (input += c))
process.stdin.on('end', () => {
  const env = process.env
  if (env.PLUGIN_LOG) fs.appendFileSync(env.PLUGIN_LOG, input.trim() + '\\n')
  const request = JSON.parse(input)
  const mode = env.PLUGIN_MODE || 'ok'
  process.stderr.write('plugin stderr: ' + (env.PLUGIN_SECRET_ON_STDERR || 'nothing') + '\\n')
  if (env.PLUGIN_EXPECT_AUDIENCE) {
    const token = request.serviceAccountToken || ''
    let claims = {}
    try { claims = JSON.parse(Buffer.from(token.split('.')[1] || '', 'base64url').toString('utf8')) } catch {}
    const aud = [].concat(claims.aud || [])
    const annotations = JSON.stringify(request.serviceAccountAnnotations || {})
    if (!aud.includes(env.PLUGIN_EXPECT_AUDIENCE) || claims.sub !== env.PLUGIN_EXPECT_SUBJECT || (env.PLUGIN_EXPECT_ANNOTATIONS && annotations !== env.PLUGIN_EXPECT_ANNOTATIONS)) {
      process.stderr.write('token check failed\\n')
      process.exit(3)
    }
  }
  const answer = () => {
    if (mode === 'exit1') process.exit(1)
    if (mode === 'hang') { require('node:child_process').spawn('sleep', ['30'], { stdio: ['ignore', 'inherit', 'ignore'] }); setInterval(() => {}, 1000); return }
    if (mode === 'garbage') return process.stdout.write('this is not json ' + (env.PLUGIN_AUTH || ''))
    if (mode === 'huge') return process.stdout.write('x'.repeat(2 * 1024 * 1024))
    const response = {
      kind: mode === 'wrongkind' ? 'SomethingElse' : 'CredentialProviderResponse',
      apiVersion: mode === 'wrongversion' ? 'credentialprovider.kubelet.k8s.io/v1beta1' : request.apiVersion,
      cacheKeyType: mode === 'badkeytype' ? 'image' : (env.PLUGIN_KEY_TYPE || 'Registry'),
      ...(env.PLUGIN_DURATION ? { cacheDuration: env.PLUGIN_DURATION } : {}),
      auth: JSON.parse(env.PLUGIN_AUTH || '{}'),
    }
    process.stdout.write(JSON.stringify(response))
  }
  setTimeout(answer, Number(env.PLUGIN_DELAY_MS || 0))
})
`

/** Writes the test plugin as `binDir/name`, executable. */
export async function writeTestPlugin(binDir: string, name: string): Promise<string> {
  const path = join(binDir, name)
  await writeFile(path, SCRIPT)
  await chmod(path, 0o755)
  return path
}
