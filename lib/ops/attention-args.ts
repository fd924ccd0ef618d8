// Argument checks shared by the two attentions: q [B,H,Nq,D], k [B,H,Nk,D], v [B,H,Nk,Dv].
import { shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';

export interface QKVShape {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
}

/** Checks q, k, v (live tensors, one device, matching shapes) and the causal flag. */
export function checkQKV(
  q: unknown,
  k: unknown,
  v: unknown,
  causal: unknown,
  extra: Record<string, unknown> = {},
): QKVShape {
  const tq = checkTensor(q, 'q');
  const tk = checkTensor(k, 'k');
  const tv = checkTensor(v, 'v');
  const tensors: Record<string, Tensor> = { q: tq, k: tk, v: tv };
  for (const [name, t] of Object.entries(extra)) tensors[name] = checkTensor(t, name);
  checkSameDevice(tensors);
  for (const [name, t] of [
    ['q', tq],
    ['k', tk],
    ['v', tv],
  ] as const) {
    if (t.ndim !== 4) throw new Error(`${name}: expected 4 dimensions [B, H, N, D], got shape ${shapeString(t.shape)}`);
    if (t.size === 0) throw new Error(`${name}: every dimension must be at least 1, got ${shapeString(t.shape)}`);
  }
  const [B, H, Nq, D] = tq.shape;
  const [, , Nk, Dv] = tv.shape;
  if (tk.shape[0] !== B || tk.shape[1] !== H || tk.shape[3] !== D) {
    throw new Error(
      `k: shape ${shapeString(tk.shape)} does not match q ${shapeString(tq.shape)} (expected [${B}, ${H}, Nk, ${D}])`,
    );
  }
  if (tv.shape[0] !== B || tv.shape[1] !== H || tv.shape[2] !== tk.shape[2]) {
    throw new Error(
      `v: shape ${shapeString(tv.shape)} does not match k ${shapeString(tk.shape)} (expected [${B}, ${H}, ${tk.shape[2]}, Dv])`,
    );
  }
  if (typeof causal !== 'boolean') throw new Error(`causal: expected a boolean, got ${String(causal)}`);
  if (causal && Nq !== Nk) throw new Error(`causal: needs as many queries as keys, got Nq = ${Nq} and Nk = ${Nk}`);
  return { B, H, Nq, Nk, D, Dv };
}
