// A tiny language model learns a short text with either attention kind: over 100 training steps
// inside tidy() its loss goes near zero, and memory() after the last step is exactly what it was
// after the first (no tensor leaks; the first step creates the gradients and AdamW's moments).
import * as ff from '../lib';
import { device } from './helpers/compare';
import { TinyLM, trainStep, windows } from './helpers/tiny-lm';

const TEXT = 'fourier meets the transformer: kernels of sinc for attention. ';
const STEPS = 100;

describe(`training a tiny LM on ${device()}`, () => {
  for (const attention of ['fourier', 'dot'] as const) {
    test(`${attention} attention: the loss on a short text goes near zero, and 100 steps leak no tensor`, () => {
      const context = 8;
      const data = windows(TEXT, context);
      const model = new TinyLM(
        { vocab: data.vocab, context, dModel: 32, heads: 4, layers: 1, attention, dropout: 0, seed: 1 },
        device(),
      );
      const opt = new ff.optim.AdamW(ff.optim.weightDecayGroups(model, 0.01), { lr: 1e-2 });
      const sched = new ff.optim.LRScheduler(opt, ff.optim.warmupCosine({ warmupSteps: 5, totalSteps: STEPS }));
      const ids = ff.tensor(data.ids, [data.count, context], { device: device() });
      const targets = ff.tensor(data.targets, [data.count, context], { device: device() });
      const losses: number[] = [];
      let afterFirst: ff.MemoryInfo | null = null;
      for (let i = 0; i < STEPS; i++) {
        losses.push(trainStep(model, opt, ids, targets));
        sched.step();
        afterFirst ??= ff.memory();
      }
      const afterLast = ff.memory();
      expect(losses[0]).toBeGreaterThan(2.5); // about log(vocab) at the start
      expect(Math.max(...losses.slice(-5))).toBeLessThan(0.02);
      expect([afterLast.numTensors, afterLast.numBytes]).toEqual([afterFirst!.numTensors, afterFirst!.numBytes]);
      opt.dispose();
      model.dispose();
      ids.dispose();
      targets.dispose();
    });
  }
});
