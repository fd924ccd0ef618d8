// Which GPUs a CUDA binary has code for: the SASS architectures and PTX versions in its fat
// binaries (what `cuobjdump --list-elf --list-ptx` shows), read from the file itself, for
// `fourierformer info`. A GPU runs the SASS of its major version with the same or a lower minor
// (sm_86 code runs on sm_89), else JIT-compiles the newest PTX not above its own version.
import * as fs from 'fs';

const FATBIN_MAGIC = 0xba55ed50;
const KIND_PTX = 1;
const KIND_SASS = 2;

export interface GpuCode {
  /** Compute capabilities with SASS, e.g. 75, 80, 86. */
  sass: number[];
  /** Compute capabilities with PTX. */
  ptx: number[];
}

/**
 * Walks every fat binary in the file: a header (magic, version, header size, payload size) and
 * then entries, each a header (kind at 0, its size at 4, payload size at 8, arch at 28) and a
 * payload. Nvcc aligns the fat binaries to 8 bytes.
 */
export function gpuCode(file: string): GpuCode {
  const buf = fs.readFileSync(file);
  const sass = new Set<number>();
  const ptx = new Set<number>();
  for (let at = 0; at + 16 <= buf.length; at += 8) {
    if (buf.readUInt32LE(at) !== FATBIN_MAGIC) continue;
    const end = at + buf.readUInt16LE(at + 6) + Number(buf.readBigUInt64LE(at + 8));
    for (let e = at + buf.readUInt16LE(at + 6); e + 32 <= Math.min(end, buf.length);) {
      const kind = buf.readUInt16LE(e);
      const arch = buf.readUInt32LE(e + 28);
      if (kind === KIND_SASS) sass.add(arch);
      else if (kind === KIND_PTX) ptx.add(arch);
      const next = e + buf.readUInt32LE(e + 4) + Number(buf.readBigUInt64LE(e + 8));
      if (next <= e) break;
      e = next;
    }
  }
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  return { sass: sorted(sass), ptx: sorted(ptx) };
}

/** "sm_75 sm_80 ... + PTX compute_120", or "none". */
export function describeGpuCode(code: GpuCode): string {
  const parts = code.sass.map((a) => `sm_${a}`);
  if (code.ptx.length) parts.push(`+ PTX ${code.ptx.map((a) => `compute_${a}`).join(' ')}`);
  return parts.join(' ') || 'none';
}
