/**
 * The docs stay true to their shape: a README a newcomer finishes, links that land, and measured
 * figures in one generated place (docs/measured.md) that the rest only links to.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MEASURED_PATHS, renderMeasured, type ResultsFile } from '../../../bench/measured.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const docFiles = [
  join(root, 'README.md'),
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(root, 'docs', f)),
];
const read = (path: string): string => readFileSync(path, 'utf8');

/** The text outside fenced code blocks and inline code: what links and prose live in. */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').replace(/``[^`]+``|`[^`\n]+`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const withoutCode = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
  for (const [, text] of withoutCode.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

test('README.md is at most 300 lines', () => {
  const lines = read(join(root, 'README.md')).split('\n').length;
  assert.ok(lines <= 300, `README.md has ${lines} lines; move the detail into docs/`);
});

test('every relative link in README.md and docs/*.md resolves, file and #anchor', () => {
  const broken: string[] = [];
  for (const file of docFiles) {
    for (const [, target] of prose(read(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split('#');
      const dest = path === '' ? file : resolve(dirname(file), path);
      const where = `${relative(root, file)} → ${target}`;
      if (!existsSync(dest)) broken.push(`${where}: no such file`);
      else if (anchor !== undefined && dest.endsWith('.md') && !anchors(read(dest)).has(anchor)) {
        broken.push(`${where}: no heading with that anchor`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

/**
 * A measured figure, as the bench prints it: a number with a decimal point or a thousands comma
 * and a unit, any rate, or a count "N/M" of at least ten. Normalized so "1.85×" and "1.85x" match.
 */
function figures(text: string): Set<string> {
  const out = new Set<string>();
  const withUnit = /(?<![\w.,/])(\d+(?:[.,]\d+)+|\d+)\s?(ms|µs|s|MiB|KiB|GiB|MB\/s|msg\/s|conn\/s|requests\/s|%|×|x)(?![\w/])/g;
  for (const [, n, unit] of text.matchAll(withUnit)) {
    const rate = unit.endsWith('/s');
    if (!rate && !/[.,]/.test(n)) continue; // "30 s", "8 MiB", "50%": settings and round bounds
    out.add(`${n.replace(/,(?=\d{3})/g, '')}${unit.replace('×', 'x')}`);
  }
  for (const [, a, b] of text.matchAll(/(?<![\w./-])(\d+)\/(\d+)(?![\w./-])/g)) {
    if (Number(b) >= 10 && Number(a) <= Number(b)) out.add(`${a}/${b}`);
  }
  return out;
}

test('no figure from docs/measured.md appears anywhere else in the docs', () => {
  const measured = figures(read(MEASURED_PATHS.out));
  const copies: string[] = [];
  for (const file of docFiles.filter((f) => f !== MEASURED_PATHS.out)) {
    for (const figure of figures(read(file))) {
      if (measured.has(figure)) copies.push(`${relative(root, file)}: ${figure}`);
    }
  }
  assert.deepEqual(copies, [], 'link to the section of docs/measured.md instead of copying its figures');
});

test('rates and ratios, figures only a bench measures, appear only in docs/measured.md', () => {
  const benchKind = /\d[\d.,]*\s?(?:MB\/s|msg\/s|conn\/s|requests\/s|connections\/s)|\d+\.\d+\s?×/g;
  const found = docFiles
    .filter((f) => f !== MEASURED_PATHS.out)
    .flatMap((f) => [...read(f).matchAll(benchKind)].map(([m]) => `${relative(root, f)}: ${m}`));
  assert.deepEqual(found, [], 'link to the section of docs/measured.md instead');
});

test('docs/measured.md is what `npm run bench:doc` makes from the results files', () => {
  const json = (path: string): ResultsFile => JSON.parse(read(path)) as ResultsFile;
  const made = renderMeasured(read(MEASURED_PATHS.notes), json(MEASURED_PATHS.bench), json(MEASURED_PATHS.stress));
  assert.equal(read(MEASURED_PATHS.out), made, 'edit bench/measured-notes.md, then npm run bench:doc');
});

test('the figures check sees the figures it is meant to', () => {
  assert.deepEqual(
    [...figures('3.01 ms, 1.85× and 1.85x, 98.3%, 1,084 bytes, 207 msg/s, 59/60; not 30 s, 50%, 2/3, 3.5.9')],
    ['3.01ms', '1.85x', '98.3%', '207msg/s', '59/60'],
  );
});
