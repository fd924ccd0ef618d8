// Parameter groups without weight decay on what should not be decayed (the usual transformer
// recipe, timm's create_optimizer): LayerNorm weights and biases, every bias, the radii R of
// Fourier attention, any other parameter of fewer than 2 dimensions, and the parameters a module
// names in noWeightDecay() (timm's model.no_weight_decay(): a ViT's positions and cls token).
// Embeddings and projection weights are decayed.
//
//   new ff.optim.AdamW(ff.optim.weightDecayGroups(model, 0.05), { lr })
import { MultiHeadAttention } from '../nn/attention';
import { LayerNorm } from '../nn/layernorm';
import type { Module } from '../nn/module';
import type { Tensor } from '../tensor';
import { checkRange } from './optimizer';

/** A module that names some of its own parameters as exempt from weight decay. */
interface NamesNoDecay {
  noWeightDecay(): string[];
}

function namesNoDecay(m: Module): m is Module & NamesNoDecay {
  return typeof (m as Partial<NamesNoDecay>).noWeightDecay === 'function';
}

/** Whether a parameter (by its local name in its module) is exempt from weight decay. */
export function isNoDecay(owner: Module, localName: string, p: Tensor): boolean {
  return (
    owner instanceof LayerNorm ||
    localName === 'bias' ||
    (owner instanceof MultiHeadAttention && localName === 'R') ||
    p.ndim < 2 ||
    (namesNoDecay(owner) && owner.noWeightDecay().includes(localName))
  );
}

/** Two groups: { params: decayed, weightDecay } and { params: the rest, weightDecay: 0 } (empty groups left out). */
export function weightDecayGroups(model: Module, weightDecay: number): { params: Tensor[]; weightDecay: number }[] {
  checkRange(weightDecay, 'weightDecay', 0);
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  const seen = new Set<Tensor>();
  for (const [, m] of model.namedModules()) {
    for (const [name, p] of m.namedParameters(false)) {
      if (seen.has(p)) continue;
      seen.add(p);
      (isNoDecay(m, name, p) ? noDecay : decay).push(p);
    }
  }
  return [
    { params: decay, weightDecay },
    { params: noDecay, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}
