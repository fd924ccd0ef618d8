// One memory figure, in a fresh process: how far one fwd+bwd raises the process's resident
// memory above where it stood, inputs and gradients included, after a small fwd+bwd at N = 16
// has loaded the addon and started its threads. The peak is Linux's high-water mark (VmHWM),
// first reset to the current resident size (writing 5 to /proc/self/clear_refs), so that the
// start-up's own peak (the TypeScript compiler's, here) does not hide a smaller one.
// scripts/peer/serve.py's 'memory' request measures PyTorch the same way.
//   node -r ts-node/register/transpile-only scripts/bench/memory-probe.ts \
//     '{"shape": {...}, "kind": "fourier", "device": "cpu"}'
import * as fs from 'fs';
import * as ff from '../../lib';
import { attentionCase, OurKind, Shape } from './attention';

/** A field of /proc/self/status, in KiB. */
function statusKiB(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`/proc/self/status has no ${field}`);
  return Number(m[1]);
}

function main(): void {
  const { shape, kind, device } = JSON.parse(process.argv[2]) as { shape: Shape; kind: OurKind; device: ff.Device };
  const small = attentionCase({ ...shape, N: 16 }, kind, device);
  small.run();
  small.dispose();
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const before = statusKiB('VmRSS');
  const c = attentionCase(shape, kind, device);
  c.run();
  ff.synchronize(device);
  console.log(JSON.stringify({ peak_rss_growth_mib: (statusKiB('VmHWM') - before) / 1024 }));
}

main();
