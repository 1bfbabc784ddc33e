/**
 * What identifies a version of a watched file (a mounted Secret is replaced by an atomic symlink
 * swap: new inode, new mtime). Watchers compare each poll with the fingerprint taken when the file
 * was last read, never with the poller's own first look, which may already be after a change.
 */
import { statSync, type Stats } from 'node:fs'

export function fingerprint(s: Stats): string {
  // fs.watchFile reports a missing file as all zeros.
  return s.ino === 0 && s.mtimeMs === 0 ? 'missing' : `${s.ino}:${s.size}:${s.mtimeMs}`
}

export function statFingerprint(path: string): string {
  try {
    return fingerprint(statSync(path))
  } catch {
    return 'missing'
  }
}
