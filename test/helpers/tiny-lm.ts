// A tiny character language model built from the nn modules, for the learning, leak and resume
// tests: token embedding + learned positions, pre- or post-LN blocks, a final LayerNorm and an
// untied output layer, trained with cross-entropy.
import * as ff from '../../lib';

export interface TinyLMConfig {
  vocab: number;
  context: number;
  dModel: number;
  heads: number;
  layers: number;
  attention: ff.nn.AttentionKind;
  dropout: number;
  seed: number;
}

export class TinyLM extends ff.nn.Module {
  readonly embed: ff.nn.Embedding;
  readonly pos: ff.Tensor;
  readonly blocks: ff.nn.ModuleList<ff.nn.TransformerBlock>;
  readonly lnF: ff.nn.LayerNorm;
  readonly head: ff.nn.Linear;

  constructor(
    readonly config: TinyLMConfig,
    device: ff.Device,
    readonly generator = new ff.Generator(config.seed),
  ) {
    super();
    const c = config;
    const layer = { device, generator };
    this.embed = this.registerModule('embed', new ff.nn.Embedding(c.vocab, c.dModel, layer));
    ff.nn.init.normal_(this.embed.weight, 0, 0.02, { generator });
    this.pos = this.registerParameter(
      'pos',
      ff.nn.init.normal_(ff.zeros([c.context, c.dModel], { device }), 0, 0.02, { generator }),
    );
    const blocks = Array.from(
      { length: c.layers },
      () =>
        new ff.nn.TransformerBlock(c.dModel, c.heads, {
          ...layer,
          attention: c.attention,
          causal: true,
          dropout: c.dropout,
          ffDim: 2 * c.dModel,
          radiusInit: 2,
        }),
    );
    this.blocks = this.registerModule('blocks', new ff.nn.ModuleList(blocks));
    this.lnF = this.registerModule('lnF', new ff.nn.LayerNorm(c.dModel, { device }));
    this.head = this.registerModule('head', new ff.nn.Linear(c.dModel, c.vocab, layer));
  }

  /** Mean cross-entropy of next-token prediction; ids and targets [B, context]. */
  loss(ids: ff.Tensor, targets: ff.Tensor): ff.Tensor {
    let x = ff.add(this.embed.forward(ids), this.pos);
    for (const b of this.blocks) x = b.forward(x);
    return ff.crossEntropy(this.head.forward(this.lnF.forward(x)), targets);
  }
}

/**
 * Every window of a text as (ids, next ids), characters mapped to their index in the sorted
 * alphabet. A target is scored only where the window already holds enough characters to
 * determine it (the shortest k such that every k characters of the text are always followed by
 * the same one); earlier targets are -100 (ignored), so the loss can reach zero.
 */
export function windows(
  text: string,
  context: number,
): { vocab: number; ids: number[]; targets: number[]; count: number } {
  const alphabet = [...new Set(text)].sort();
  const codes = [...text].map((ch) => alphabet.indexOf(ch));
  let k = 1;
  const determined = (len: number) => {
    const next = new Map<string, number>();
    for (let i = 0; i + len < codes.length; i++) {
      const key = codes.slice(i, i + len).join(',');
      if ((next.get(key) ?? codes[i + len]) !== codes[i + len]) return false;
      next.set(key, codes[i + len]);
    }
    return true;
  };
  while (!determined(k)) k++;
  if (k > context) throw new Error(`text: needs ${k} characters of context to be predictable, more than ${context}`);
  const ids: number[] = [];
  const targets: number[] = [];
  let count = 0;
  for (let s = 0; s + context < codes.length; s++, count++) {
    ids.push(...codes.slice(s, s + context));
    targets.push(...codes.slice(s + 1, s + context + 1).map((c, t) => (t + 1 >= k ? c : -100)));
  }
  return { vocab: alphabet.length, ids, targets, count };
}

/** One training step inside tidy(): forward, backward, clip, AdamW; returns the loss. */
export function trainStep(
  model: TinyLM,
  opt: ff.optim.Optimizer<ff.optim.BaseOptions>,
  ids: ff.Tensor,
  targets: ff.Tensor,
): number {
  return ff.tidy(() => {
    opt.zeroGrad();
    const loss = model.loss(ids, targets);
    loss.backward();
    ff.optim.clipGradNorm_(model.parameters(), 1);
    opt.step();
    return loss.item();
  });
}
