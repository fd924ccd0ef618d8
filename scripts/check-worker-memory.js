#!/usr/bin/env node
// Native memory of workers that end: starts WORKERS (default 20) worker threads per device, one
// at a time, each allocating 64 MiB of tensors it never disposes; half exit on their own, half
// are terminated in the middle of a ~1 s fourierAttention. Prints the process's live tensors
// (memory().process), the caching allocator's bytes, and its RSS before and after: what a
// worker leaves behind once it is gone. Uses the built package (npm run build -- ts cpu emu).
//   node scripts/check-worker-memory.js [device...]      (default: cpu cuda-emu)
const path = require('path');
const { Worker } = require('worker_threads');
const ff = require(path.join(__dirname, '..', 'dist'));

const fixture = path.join(__dirname, '..', 'test', 'fixtures', 'workers', 'worker.js');
const count = Number(process.env.WORKERS || 20);
const devices = process.argv.slice(2).length ? process.argv.slice(2) : ['cpu', 'cuda-emu'];
const longShape = { cpu: [1, 8, 4096, 16], 'cuda-emu': [1, 2, 640, 16], cuda: [1, 8, 16384, 64] };
const MiB = 1 << 20;

// One worker: allocates 64 MiB; `terminate`: is terminated 50 ms into its long op, else exits
// after it (its tensors still alive: freed by the environment's cleanup).
function oneWorker(device, terminate) {
  return new Promise((resolve, reject) => {
    const w = new Worker(fixture, { workerData: { task: 'long', device, floats: 16 * MiB, shape: longShape[device] } });
    w.on('message', (m) => {
      if (m.started && terminate) setTimeout(() => w.terminate(), 50);
    });
    w.once('error', reject);
    w.once('exit', resolve);
  });
}

function snapshot(device) {
  global.gc?.();
  const m = ff.memory().process;
  return {
    tensors: m.numTensors,
    liveMiB: m.numBytes / MiB,
    cachedMiB: ff.cachedMemory(device) / MiB,
    rssMiB: process.memoryUsage().rss / MiB,
  };
}

const fmt = (s) =>
  `tensors ${s.tensors}, live ${s.liveMiB.toFixed(1)} MiB, cached ${s.cachedMiB.toFixed(1)} MiB, RSS ${s.rssMiB.toFixed(1)} MiB`;

(async () => {
  for (const device of devices) {
    ff.tensor([0], [1], { device }).dispose();
    await oneWorker(device, false); // first-use costs (thread pools, code pages) out of the figures
    ff.emptyCache(device);
    const before = snapshot(device);
    let terminated = 0;
    for (let i = 0; i < count; i++) {
      const code = await oneWorker(device, i % 2 === 1);
      if (code !== 0) terminated++;
    }
    const after = snapshot(device);
    ff.emptyCache(device);
    const emptied = snapshot(device);
    console.log(
      `${device}: ${count} workers with 64 MiB each, ${terminated} terminated mid-op, ${count - terminated} exited`,
    );
    console.log(`  before:                 ${fmt(before)}`);
    console.log(`  after:                  ${fmt(after)}`);
    console.log(`  after emptyCache():     ${fmt(emptied)}`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
