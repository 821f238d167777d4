#!/usr/bin/env node
// Fails when folders under src/ import each other in a cycle (a → b → … → a): the layering the
// docs/architecture.md draws (listeners → upstream → resumption → audit) must hold; and when a file in src/ is
// over 350 lines (one job per module); and when a test file is out of its area's folder or shares
// its name with another. Prints what it found.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', 'src');
const files = readdirSync(root, { recursive: true })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(root, f));
const edges = new Map(); // folder → Map(folder → an example "file → import")
for (const file of files) {
  const from = relative(root, dirname(file)) || '.';
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    const to = relative(root, dirname(resolve(dirname(file), m[1]))) || '.';
    if (to === from) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    if (!edges.get(from).has(to)) edges.get(from).set(to, `${relative(root, file)} imports ${m[1]}`);
  }
}

// Tarjan's strongly connected components: any component of two or more folders is a cycle.
let index = 0;
const stack = [];
const info = new Map();
const cycles = [];
function visit(v) {
  info.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of edges.get(v)?.keys() ?? []) {
    if (!info.has(w)) {
      visit(w);
      info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
    } else if (info.get(w).onStack) {
      info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
    }
  }
  if (info.get(v).low === info.get(v).index) {
    const scc = [];
    let w;
    do {
      w = stack.pop();
      info.get(w).onStack = false;
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1) cycles.push(scc);
  }
}
for (const v of edges.keys()) if (!info.has(v)) visit(v);

for (const scc of cycles) {
  const inside = new Set(scc);
  console.error(`import cycle between src/ folders: ${scc.sort().join(', ')}`);
  for (const a of scc) for (const [b, why] of edges.get(a) ?? []) if (inside.has(b)) console.error(`  ${a} → ${b}: ${why}`);
}
const MAX_LINES = 350;
const long = files.map((f) => [relative(root, f), readFileSync(f, 'utf8').split('\n').length - 1]).filter(([, n]) => n > MAX_LINES);
for (const [f, n] of long) console.error(`src/${f}: ${n} lines (at most ${MAX_LINES})`);
// Tests: laid out by area (test/unit/<area>/ for pure unit tests, test/<area>/ for the rest), and no two
// files of one name, so a failure's file name says which test it is.
const testRoot = resolve(import.meta.dirname, '..', 'test');
const byName = new Map();
const misplaced = [];
for (const f of readdirSync(testRoot, { recursive: true }).filter((f) => f.endsWith('.test.ts'))) {
  const depth = f.split(/[\\/]/).length;
  const name = f.split(/[\\/]/).pop();
  if (depth !== (f.startsWith('unit') ? 3 : 2)) misplaced.push(f);
  byName.set(name, [...(byName.get(name) ?? []), f]);
}
for (const f of misplaced) console.error(`test/${f}: a test file belongs in test/unit/<area>/ or test/<area>/`);
const twins = [...byName].filter(([, paths]) => paths.length > 1);
for (const [name, paths] of twins) console.error(`two test files named ${name}: ${paths.join(', ')}`);
const bad = cycles.length + long.length + misplaced.length + twins.length;
if (bad === 0)
  console.log(
    `check-structure: ${files.length} files in ${edges.size} folders, no import cycle, none over ${MAX_LINES} lines; tests by area, no twin names`,
  );
process.exit(bad ? 1 : 0);
