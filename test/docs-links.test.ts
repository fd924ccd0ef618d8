// Every relative link of README.md and docs/*.md resolves: the file exists and, for a link with
// a #fragment into a Markdown file, a heading of that file has that anchor (GitHub's rule:
// lowercase, punctuation dropped, spaces to hyphens, repeats numbered -1, -2, ...). Links in
// code blocks and code spans are not links; absolute URLs are not checked (no network in CI).
// Plain file reads: run once, in the cpu project.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');

/** The text without fenced code blocks, indented code blocks and inline code spans. */
export function proseOf(md: string): string {
  const out: string[] = [];
  let fence: string | null = null;
  let indentedCode = false;
  let prevBlank = true;
  for (const line of md.split('\n')) {
    const blank = line.trim() === '';
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      out.push('');
    } else if (m) {
      fence = m[1];
      out.push('');
    } else if (/^( {4}|\t)/.test(line) && (prevBlank || indentedCode)) {
      indentedCode = true;
      out.push('');
    } else {
      if (!blank) indentedCode = false;
      out.push(line.replace(/(`+)[\s\S]*?\1/g, ''));
    }
    prevBlank = blank;
  }
  return out.join('\n');
}

/** GitHub's anchors of a Markdown file's headings. */
export function anchorsOf(md: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseOfHeadings(md)) {
    const text = line.replace(/^#+\s*/, '').replace(/\s*#*\s*$/, '');
    const base = text
      .toLowerCase()
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

function proseOfHeadings(md: string): string[] {
  const lines: string[] = [];
  let fence = false;
  for (const line of md.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    else if (!fence && /^#{1,6}\s/.test(line)) lines.push(line);
  }
  return lines;
}

/** The relative link targets of a Markdown text: inline links, images and reference definitions. */
export function linksOf(md: string): string[] {
  const prose = proseOf(md);
  const targets: string[] = [];
  for (const m of prose.matchAll(/!?\[(?:[^\][]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
    targets.push(m[1]);
  for (const m of prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) targets.push(m[1]);
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** The broken links of one file, as "target: why". */
export function brokenLinks(file: string): string[] {
  const md = fs.readFileSync(file, 'utf8');
  const bad: string[] = [];
  for (const target of linksOf(md)) {
    const [p, frag] = target.split('#', 2);
    const dest = p === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(p));
    if (!fs.existsSync(dest)) {
      bad.push(`${target}: ${path.relative(ROOT, dest)} does not exist`);
      continue;
    }
    if (
      frag !== undefined &&
      dest.endsWith('.md') &&
      !anchorsOf(fs.readFileSync(dest, 'utf8')).has(decodeURIComponent(frag))
    ) {
      bad.push(`${target}: ${path.relative(ROOT, dest)} has no heading with the anchor #${frag}`);
    }
  }
  return bad;
}

const docs = () => [
  path.join(ROOT, 'README.md'),
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => path.join(ROOT, 'docs', f)),
];

(process.env.FOURIERFORMER_DEVICE === 'cpu' ? describe : describe.skip)('links of README.md and docs/', () => {
  test('the checker: anchors, code left out, broken files and anchors found', () => {
    expect([
      ...anchorsOf(
        "# A b\n## The paper's runs\n## From a clone: scripts/setup.sh\n## A b\n```\n# not a heading\n```\n",
      ),
    ]).toEqual(['a-b', 'the-papers-runs', 'from-a-clone-scriptssetupsh', 'a-b-1']);
    expect(
      linksOf(
        '[a](x.md) `[b](y.md)` ![c](d.svg) [e](https://e.org)\n\n    [f](g.md)\n```\n[h](i.md)\n```\n[r]: j.md\n',
      ),
    ).toEqual(['x.md', 'd.svg', 'j.md']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-links-'));
    fs.writeFileSync(path.join(dir, 'a.md'), '# Top\n[ok](#top) [no](#nope) [gone](b.md) [self](a.md#top)\n');
    expect(brokenLinks(path.join(dir, 'a.md'))).toEqual([
      '#nope: ' + path.relative(ROOT, path.join(dir, 'a.md')) + ' has no heading with the anchor #nope',
      'b.md: ' + path.relative(ROOT, path.join(dir, 'b.md')) + ' does not exist',
    ]);
  });

  test('every relative link resolves', () => {
    const files = docs();
    expect(files.length).toBeGreaterThan(5);
    const bad = files.flatMap((f) => brokenLinks(f).map((b) => `${path.relative(ROOT, f)}: ${b}`));
    expect(bad).toEqual([]);
  });
});
