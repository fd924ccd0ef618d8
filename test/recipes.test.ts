// docs/recipes.md and the paper presets agree: every field that `train lm|vit --preset NAME
// --print-config` prints has a row in the document's table for that preset, with the same value,
// and every row names a field the preset has. Cells hold JSON, where a number may be written a/b.
import * as fs from 'fs';
import * as path from 'path';
import { lmConfigFromFlags, vitConfigFromFlags } from '../lib/cli/train';

const DOC = path.join(__dirname, '..', 'docs', 'recipes.md');

/** The leaves of a JSON object as dotted paths (arrays are leaves). */
function flatten(x: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
    for (const [k, v] of Object.entries(x)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = x;
  return out;
}

/** A cell's value: the JSON between backticks, with a/b fractions evaluated. */
function cellValue(cell: string, where: string): unknown {
  const m = /^`(.*)`$/.exec(cell.trim());
  if (!m) throw new Error(`${where}: expected a value in backticks, got ${JSON.stringify(cell)}`);
  return JSON.parse(
    m[1].replace(/(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)/g, (_, a: string, b: string) => String(Number(a) / Number(b))),
  );
}

/** The rows of every table whose header has a 'key' column, per preset column: { preset: { key: value } }. */
function documentedValues(markdown: string): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i]
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    if (header[1] !== 'key') continue;
    const presets = header.slice(2, -1);
    for (let j = i + 2; j < lines.length && lines[j].startsWith('|'); j++) {
      const cells = lines[j].split('|').slice(1, -1);
      const key = /^`(.+)`$/.exec(cells[1].trim())?.[1];
      if (key === undefined) throw new Error(`docs/recipes.md line ${j + 1}: expected a key in backticks`);
      presets.forEach((p, c) => {
        out[p] ??= {};
        if (key in out[p]) throw new Error(`docs/recipes.md line ${j + 1}: ${p} ${key} appears twice`);
        out[p][key] = cellValue(cells[2 + c], `docs/recipes.md line ${j + 1}, ${p}`);
      });
      if (cells[cells.length - 1].trim() === '')
        throw new Error(`docs/recipes.md line ${j + 1}: ${key} cites no source`);
      i = j;
    }
  }
  return out;
}

function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number')
    return a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => same(v, b[i]));
  return JSON.stringify(a) === JSON.stringify(b);
}

describe('docs/recipes.md and the paper presets', () => {
  const doc = documentedValues(fs.readFileSync(DOC, 'utf8'));
  const printed: Record<string, unknown> = {
    'wt103-small': lmConfigFromFlags({ preset: 'wt103-small', attention: 'both', printConfig: true }),
    'wt103-medium': lmConfigFromFlags({ preset: 'wt103-medium', attention: 'both', printConfig: true }),
    'deit-tiny': vitConfigFromFlags({ preset: 'deit-tiny', attention: 'both', printConfig: true }),
  };

  test('the document has a column for each paper preset, and no other', () => {
    expect(Object.keys(doc).sort()).toEqual(Object.keys(printed).sort());
  });

  test.each(Object.keys(printed))(
    '%s: every printed field is documented with its value, and every documented field exists',
    (name) => {
      const fields = flatten(printed[name]);
      delete fields.kind;
      delete fields.preset;
      const rows = doc[name];
      const missing = Object.keys(fields).filter((k) => !(k in rows));
      const unknown = Object.keys(rows).filter((k) => !(k in fields));
      const differ = Object.keys(fields)
        .filter((k) => k in rows && !same(fields[k], rows[k]))
        .map((k) => `${k}: preset ${JSON.stringify(fields[k])}, document ${JSON.stringify(rows[k])}`);
      expect({ missing, unknown, differ }).toEqual({ missing: [], unknown: [], differ: [] });
    },
  );
});
