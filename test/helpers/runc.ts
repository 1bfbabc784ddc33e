// runc, the node tier's container runtime under containerd, from Debian's package (1.1.5, built with
// libseccomp: containerd gives every sandbox a seccomp profile, which a runc built from Go modules
// without libseccomp cannot apply). Any runc on PATH will do.
import { findProgram } from './find-program.js'

export const RUNC_PACKAGE_HINT = 'install the Debian package runc: apt-get update && apt-get install -y runc'

export function findRunc(): string | null {
  return findProgram('runc', ['/usr/sbin/runc', '/usr/bin/runc'])
}
