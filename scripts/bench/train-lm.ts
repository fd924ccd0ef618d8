// The training-step figure of the benchmark: the bench LM (vocabulary 10000, d_model 128, 4
// post-LayerNorm layers, 8 heads, FF 512, context 128, batch 16, full softmax, dropout 0.1,
// clipping 0.25, AdamW) with 'dot' or 'fourier' attention, one step on one fixed batch (another
// batch size with --batch: a GPU check on cuda-emu runs batch 1). The step clips with
// clipGradNormAsync_, as PyTorch's clip_grad_norm_ does, so that on a GPU it waits only for the
// loss read (scripts/count-syncs.ts counts the waits of this model's step).
// scripts/peer/train_peer.py is the same model in PyTorch (SDPA for 'dot', the paper's
// materialised Fourier attention for 'fourier').
import * as ff from '../../lib';
import type { Case } from './attention';

export const CONFIG = {
  vocab: 10000,
  d_model: 128,
  layers: 4,
  heads: 8,
  ff: 512,
  context: 128,
  batch: 16,
  dropout: 0.1,
  lr: 2.5e-4,
  clip: 0.25,
};
export type TrainConfig = typeof CONFIG;
export type TrainKind = 'fourier' | 'dot';

function sinusoids(n: number, d: number): Float32Array {
  const pe = new Float32Array(n * d);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < d; i += 2) {
      const angle = p * Math.exp((-i * Math.log(10000)) / d);
      pe[p * d + i] = Math.sin(angle);
      pe[p * d + i + 1] = Math.cos(angle);
    }
  }
  return pe;
}

/** The model of train_peer.py: embedding + sinusoidal positions, post-LN ReLU blocks, untied head. */
export class BenchLM extends ff.nn.Module {
  readonly embed: ff.nn.Embedding;
  readonly pos: ff.Tensor;
  readonly drop: ff.nn.Dropout;
  readonly blocks: ff.nn.ModuleList<ff.nn.TransformerBlock>;
  readonly head: ff.nn.Linear;

  constructor(kind: TrainKind, device: ff.Device, c: TrainConfig = CONFIG) {
    super();
    const generator = new ff.Generator(0);
    this.embed = this.registerModule('embed', new ff.nn.Embedding(c.vocab, c.d_model, { device, generator }));
    this.pos = this.registerBuffer(
      'pos',
      ff.tensor(sinusoids(c.context, c.d_model), [c.context, c.d_model], { device }),
    );
    this.drop = this.registerModule('drop', new ff.nn.Dropout(c.dropout, generator));
    this.blocks = this.registerModule(
      'blocks',
      new ff.nn.ModuleList(
        Array.from(
          { length: c.layers },
          () =>
            new ff.nn.TransformerBlock(c.d_model, c.heads, {
              device,
              generator,
              attention: kind,
              causal: true,
              norm: 'post',
              activation: 'relu',
              ffDim: c.ff,
              dropout: c.dropout,
              radius: 'feature',
              radiusInit: 2,
            }),
        ),
      ),
    );
    this.head = this.registerModule('head', new ff.nn.Linear(c.d_model, c.vocab, { device, generator }));
  }

  loss(ids: ff.Tensor, targets: ff.Tensor): ff.Tensor {
    let x = this.drop.forward(ff.add(this.embed.forward(ids), this.pos));
    for (const b of this.blocks) x = b.forward(x);
    return ff.crossEntropy(this.head.forward(x), targets);
  }
}

/** The fixed batch of the step: token ids and next-token targets, [batch, context] row-major each. */
export function benchBatch(c: TrainConfig = CONFIG): { ids: number[]; targets: number[] } {
  const data = new ff.Generator(1).uint32(c.batch * (c.context + 1));
  const ids: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < c.batch; b++) {
    for (let t = 0; t < c.context; t++) {
      ids.push(data[b * (c.context + 1) + t] % c.vocab);
      targets.push(data[b * (c.context + 1) + t + 1] % c.vocab);
    }
  }
  return { ids, targets };
}

/** One training step (zeroed gradients, forward, loss, backward, clipping, AdamW) of a new model. */
export function trainCase(kind: TrainKind, device: ff.Device, c: TrainConfig = CONFIG): Case {
  const model = new BenchLM(kind, device, c);
  const opt = new ff.optim.AdamW(model.parameters(), { lr: c.lr, weightDecay: 0.01 });
  const { ids, targets } = benchBatch(c);
  const idsT = ff.tensor(ids, [c.batch, c.context], { device });
  const targetsT = ff.tensor(targets, [c.batch, c.context], { device });
  return {
    run: () =>
      ff.tidy(() => {
        opt.zeroGrad();
        const loss = model.loss(idsT, targetsT);
        loss.backward();
        ff.optim.clipGradNormAsync_(model.parameters(), c.clip);
        opt.step();
        loss.item();
      }),
    dispose: () => {
      opt.dispose();
      model.dispose();
      idsT.dispose();
      targetsT.dispose();
    },
  };
}
