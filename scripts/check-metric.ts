// The package's first job: on every backend this machine can run, compute the Fourier metric and
// its three gradients (and the fused attentions, forward and backward) on random inputs and
// check them against the float64 pure-TS reference. Prints a table; exits 1 on any mismatch.
//   npx ts-node scripts/check-metric.ts            (npm run check:kernels)
import * as ff from '../lib';

const { uniform, relErr } = ff.reference;

interface Row {
  device: string;
  op: string;
  shape: string;
  out: number;
  grads: number;
  ms: number;
}

type Op = (device: ff.Device) => Omit<Row, 'device'>;

const [B, H, N, D, Dv] = [2, 4, 48, 16, 16];
const inputs = {
  q: uniform(B * H * N * D, -0.8, 0.8, 1),
  k: uniform(B * H * N * D, -0.8, 0.8, 2),
  v: uniform(B * H * N * Dv, -1, 1, 3),
  R: uniform(H, 1.5, 2.5, 4),
  dK: uniform(B * H * N * N, -1, 1, 5),
  dout: uniform(B * H * N * Dv, -1, 1, 6),
};
const ref = ff.reference;
const qr = ref.refArray(inputs.q, [B, H, N, D]);
const kr = ref.refArray(inputs.k, [B, H, N, D]);
const vr = ref.refArray(inputs.v, [B, H, N, Dv]);
const Rr = ref.refArray(inputs.R, [H, 1]);

/** Runs f on fresh leaf tensors of the device; returns the output values and leaf grads. */
function runNative(device: ff.Device, f: (t: Record<string, ff.Tensor>) => ff.Tensor, grad: Float32Array) {
  return ff.tidy(() => {
    const t = {
      q: ff.tensor(inputs.q, [B, H, N, D], { device, requiresGrad: true }),
      k: ff.tensor(inputs.k, [B, H, N, D], { device, requiresGrad: true }),
      v: ff.tensor(inputs.v, [B, H, N, Dv], { device, requiresGrad: true }),
      R: ff.tensor(inputs.R, [H, 1], { device, requiresGrad: true }),
    };
    const start = performance.now();
    const out = f(t);
    out.backward(ff.tensor(grad, [...out.shape], { device }));
    const values = out.toFloat32Array();
    const ms = performance.now() - start;
    const g = (x: ff.Tensor) => (x.grad ? x.grad.toFloat32Array() : new Float32Array(0));
    return { values, ms, dq: g(t.q), dk: g(t.k), dv: g(t.v), dR: g(t.R) };
  });
}

const ops: Op[] = [
  (device) => {
    const r = runNative(device, (t) => ff.fourierMetric(t.q, t.k, t.R), inputs.dK);
    const g = ref.fourierMetricGradRef(qr, kr, Rr, ref.refArray(inputs.dK, [B, H, N, N]));
    return {
      op: 'fourierMetric p=4',
      shape: `q,k [${B},${H},${N},${D}] R [${H},1]`,
      ms: r.ms,
      out: relErr(r.values, ref.fourierMetricRef(qr, kr, Rr).data),
      grads: Math.max(relErr(r.dq, g.dq.data), relErr(r.dk, g.dk.data), relErr(r.dR, g.dR.data)),
    };
  },
  (device) => {
    const opts = { causal: true };
    const r = runNative(device, (t) => ff.fourierAttention(t.q, t.k, t.v, t.R, opts), inputs.dout);
    const g = ref.fourierAttentionGradRef(qr, kr, vr, Rr, ref.refArray(inputs.dout, [B, H, N, Dv]), opts);
    return {
      op: 'fourierAttention causal',
      shape: `q,k,v [${B},${H},${N},${D}]`,
      ms: r.ms,
      out: relErr(r.values, ref.fourierAttentionRef(qr, kr, vr, Rr, opts).data),
      grads: Math.max(
        relErr(r.dq, g.dq.data),
        relErr(r.dk, g.dk.data),
        relErr(r.dv, g.dv.data),
        relErr(r.dR, g.dR.data),
      ),
    };
  },
  (device) => {
    const opts = { causal: true };
    const r = runNative(device, (t) => ff.dotProductAttention(t.q, t.k, t.v, opts), inputs.dout);
    const g = ref.dotAttentionGradRef(qr, kr, vr, ref.refArray(inputs.dout, [B, H, N, Dv]), opts);
    return {
      op: 'dotProductAttention causal',
      shape: `q,k,v [${B},${H},${N},${D}]`,
      ms: r.ms,
      out: relErr(r.values, ref.dotAttentionRef(qr, kr, vr, opts).data),
      grads: Math.max(relErr(r.dq, g.dq.data), relErr(r.dk, g.dk.data), relErr(r.dv, g.dv.data)),
    };
  },
];

function main(): void {
  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const b of ff.backends()) {
    if (!b.available) {
      skipped.push(`${b.device}: ${b.detail.split('\n')[0]}`);
      continue;
    }
    console.log(`${b.device}: ${b.detail}`);
    for (const op of ops) rows.push({ device: b.device, ...op(b.device) });
  }
  const fmt = (x: number) => x.toExponential(1);
  console.log('\n| device | op | shape | output err | gradient err | fwd+bwd ms |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(`| ${r.device} | ${r.op} | ${r.shape} | ${fmt(r.out)} | ${fmt(r.grads)} | ${r.ms.toFixed(1)} |`);
  console.log(
    '\nErrors are max |ours - float64 reference| / max |reference|; limits 1e-4 (outputs), 1e-3 (gradients).',
  );
  for (const s of skipped) console.log(`skipped ${s}`);
  const bad = rows.filter((r) => !(r.out < 1e-4 && r.grads < 1e-3));
  if (bad.length > 0) {
    console.error(`FAILED: ${bad.map((r) => `${r.device} ${r.op}`).join(', ')}`);
    process.exit(1);
  }
  console.log(`all ${rows.length} checks passed on ${new Set(rows.map((r) => r.device)).size} backend(s)`);
}

main();
