// Host synchronisations in training steps of the bench LM (scripts/bench/train-lm.ts's model and
// step: embedding, 4 post-LN blocks, full-softmax cross-entropy, clipping, AdamW, the loss read),
// as the backend counts them (ff.hostSyncs): the goal is 1 per step, the loss read. Prints the
// count of each step after a warm-up step, and writes JSON; with --max N it exits 1 if a step
// waited more than N times (scripts/gpu-check.sh: --max 1).
//   npx ts-node scripts/count-syncs.ts [--device cuda-emu] [--kinds fourier,dot] [--steps 2]
//                                      [--batch 16] [--max N] [--out count-syncs.json]
// (--batch 2 keeps cuda-emu quick: the count does not depend on it.)
import { Command } from 'commander';
import * as fs from 'fs';
import * as ff from '../lib';
import { BenchLM, CONFIG, TrainKind } from './bench/train-lm';

function main(): void {
  const opts = new Command()
    .option('--device <device>', 'cpu | cuda | cuda-emu', 'cuda-emu')
    .option('--kinds <list>', 'attention kinds', 'fourier,dot')
    .option('--steps <n>', 'counted steps after one warm-up step', '2')
    .option('--batch <n>', 'sequences per step (the bench: 16)', String(CONFIG.batch))
    .option('--max <n>', 'exit 1 if a step synchronises more than n times')
    .option('--out <file>', 'JSON results')
    .parse()
    .opts();
  const device = opts.device as ff.Device;
  const batch = Number(opts.batch),
    context = CONFIG.context;
  const results: Record<string, number[]> = {};
  for (const kind of (opts.kinds as string).split(',') as TrainKind[]) {
    const model = new BenchLM(kind, device);
    const opt = new ff.optim.AdamW(model.parameters(), { lr: CONFIG.lr, weightDecay: 0.01 });
    const data = new ff.Generator(1).uint32(batch * (context + 1));
    const ids = ff.tensor(
      Array.from({ length: batch * context }, (_, i) => data[i + Math.floor(i / context)] % CONFIG.vocab),
      [batch, context],
      { device },
    );
    const targets = ff.tensor(
      Array.from({ length: batch * context }, (_, i) => data[i + Math.floor(i / context) + 1] % CONFIG.vocab),
      [batch, context],
      { device },
    );
    const step = (): number =>
      ff.tidy(() => {
        opt.zeroGrad();
        const loss = model.loss(ids, targets);
        loss.backward();
        ff.optim.clipGradNormAsync_(model.parameters(), CONFIG.clip);
        opt.step();
        return loss.item();
      });
    step();
    const counts: number[] = [];
    for (let s = 0; s < Number(opts.steps); s++) {
      const before = ff.hostSyncs(device);
      const loss = step();
      counts.push(ff.hostSyncs(device) - before);
      if (!Number.isFinite(loss)) throw new Error(`${kind}: loss ${loss}`);
    }
    results[kind] = counts;
    console.log(
      `${kind}: host synchronisations per training step on ${device} (batch ${batch} x context ${context}): ${counts.join(', ')}`,
    );
    opt.dispose();
    model.dispose();
    ids.dispose();
    targets.dispose();
  }
  if (opts.out)
    fs.writeFileSync(opts.out, JSON.stringify({ device, batch, context, config: CONFIG, results }, null, 1));
  if (opts.max !== undefined) {
    const max = Number(opts.max);
    const over = Object.entries(results).filter(([, counts]) => counts.some((c) => c > max));
    if (over.length) {
      console.error(
        `more than ${max} host synchronisation(s) per step: ${over.map(([k, c]) => `${k} ${c.join(', ')}`).join('; ')}`,
      );
      process.exitCode = 1;
    }
  }
}

main();
