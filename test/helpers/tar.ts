// A tar archive (POSIX ustar) of regular files, as an image layer holds them: enough for the test
// images a container runtime unpacks and runs. Entries are written in the order given, owned by
// root, with a fixed mtime, so the same files always make the same bytes (and the same diff_id).
export interface TarFile {
  /** Path inside the archive, without a leading slash (`pause`, `etc/hostname`); at most 100 bytes. */
  name: string
  data: Buffer
  mode?: number
}

const BLOCK = 512
/** 2000-01-01: any fixed time keeps the digest stable. */
const MTIME = 946_684_800

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`
}

function header(file: TarFile): Buffer {
  const h = Buffer.alloc(BLOCK)
  const name = Buffer.from(file.name, 'utf8')
  if (name.length > 100) throw new Error(`tar: name longer than 100 bytes: ${file.name}`)
  name.copy(h, 0)
  h.write(octal(file.mode ?? 0o644, 8), 100, 'ascii')
  h.write(octal(0, 8), 108, 'ascii') // uid
  h.write(octal(0, 8), 116, 'ascii') // gid
  h.write(octal(file.data.length, 12), 124, 'ascii')
  h.write(octal(MTIME, 12), 136, 'ascii')
  h.write('        ', 148, 'ascii') // the checksum counts its own field as spaces
  h.write('0', 156, 'ascii') // a regular file
  h.write('ustar\0', 257, 'ascii')
  h.write('00', 263, 'ascii')
  let sum = 0
  for (const byte of h) sum += byte
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii')
  return h
}

/** The archive's bytes: each file's header and data padded to a block, then two zero blocks. */
export function tarArchive(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = []
  for (const file of files) {
    parts.push(header(file), file.data)
    const pad = (BLOCK - (file.data.length % BLOCK)) % BLOCK
    if (pad > 0) parts.push(Buffer.alloc(pad))
  }
  parts.push(Buffer.alloc(2 * BLOCK))
  return Buffer.concat(parts)
}
