// `npm run bench:docs`: regenerates docs/benchmarks.md, docs/benchmarks.svg and the README's
// benchmark table from the JSON that `npm run bench` wrote (scripts/bench/docs.ts).
//   npm run bench:docs [-- --json docs/benchmarks.json]
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { writeDocs } from './bench/docs';
import type { Results } from './bench/results';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  const opts = new Command()
    .description("regenerate the benchmark docs and the README's table from the benchmark JSON")
    .option('--json <file>', 'the results of npm run bench', path.join(root, 'docs', 'benchmarks.json'))
    .parse()
    .opts<{ json: string }>();
  if (!fs.existsSync(opts.json)) throw new Error(`--json: ${opts.json} does not exist; run npm run bench first`);
  const results = JSON.parse(fs.readFileSync(opts.json, 'utf8')) as Results;
  if (results.schema !== 1)
    throw new Error(`--json: ${opts.json} is not a results file of npm run bench (schema ${results.schema})`);
  for (const f of await writeDocs(results, root)) console.log(`wrote ${path.relative(process.cwd(), f)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
