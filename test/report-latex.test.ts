import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport } from '../src/report/build.js';
import { escapeLatex } from '../src/report/latex.js';
import { FixtureStore, writeSweep, type SweepCell, removeFixtures } from './report-fixtures.js';

after(removeFixtures);

let out = '';

/**
 * DC x {1, 10} x {base, control, MetaDD} and the random baseline; (DC, 10, base, alexnet) is missing,
 * (DC, 1, MetaDD, convnet) partial. MetaDD is 1 point above its control, except on ResNet-18 (1 below).
 */
before(async () => {
  const cells: SweepCell[] = [];
  for (const [method, arms] of [['random', ['none']], ['dc', ['none', 'control', 'metadd']]] as const) {
    for (const ipc of [1, 10]) {
      for (const arm of arms) {
        for (const seed of [0, 1]) {
          const b = (method === 'random' ? 0.6 : 0.8) + ipc / 100 + (arm === 'metadd' ? 0.02 : arm === 'control' ? 0.01 : 0);
          const results: SweepCell['results'] = { convnet: [b, b + 0.004], resnet18: [b - 0.05 + (arm === 'control' ? 0.02 : 0)], alexnet: [b - 0.1] };
          if (method === 'dc' && ipc === 10 && arm === 'none') results.alexnet = undefined;
          if (method === 'dc' && ipc === 1 && arm === 'metadd' && seed === 1) results.convnet = undefined;
          cells.push({
            facts: { 'distill.method': method, 'distill.ipc': ipc, 'metadd.arm': arm, 'metadd.aux': ['convnet', 'resnet18'], seed },
            coords: { 'distill.ipc': ipc, 'metadd.arm': arm, seed },
            results,
          });
        }
      }
    }
  }
  const store = new FixtureStore();
  const { params, source } = writeSweep(store, 'latex', ['convnet', 'resnet18', 'alexnet'], cells, {
    title: 'MetaDD & friends: 100% of_the results',
    labels: { values: { 'distill.method': { dc: 'DC_gm' } } },
    tables: [{ name: 'main', reference: [{ label: 'DC (published) #1', values: { convnet: 91.7 }, std: { convnet: 0.5 }, source: 'Zhao et al. 2021' }] }],
  });
  out = join(store.root, 'report');
  await buildReport(params, source, out, 'store');
});

/** Cells of a tabular row, counting \multicolumn{k} as k. */
function width(line: string): number {
  return line
    .replace(/\\\\\s*$/, '')
    .split(' & ')
    .reduce((n, cell) => n + Number(/\\multicolumn\{(\d+)\}/.exec(cell)?.[1] ?? 1), 0);
}

test('the LaTeX table: booktabs rules, seen/unseen spanning headers, bold best, ± in small type, -- for missing', () => {
  const tex = readFileSync(join(out, 'tables', 'main.tex'), 'utf8');
  const lines = tex.split('\n');
  const body = lines.filter((l) => l.endsWith('\\\\'));
  assert.match(tex, /\\begin\{tabular\}\{lllcccc\}/, '3 row keys + 3 architectures + the average');
  assert.equal(lines.filter((l) => l === '\\toprule').length, 1);
  assert.equal(lines.filter((l) => l === '\\bottomrule').length, 1);
  assert.ok(lines.indexOf('\\toprule') < lines.indexOf('\\midrule') && lines.lastIndexOf('\\midrule') < lines.indexOf('\\bottomrule'));
  assert.ok(!tex.includes('\\hline') && !/\{[lc]*\|/.test(tex), 'booktabs: no \\hline, no vertical rules');
  assert.ok(tex.includes(' &  &  & \\multicolumn{2}{c}{Seen} & \\multicolumn{1}{c}{Unseen} &  \\\\'));
  assert.ok(tex.includes('\\cmidrule(lr){4-5} \\cmidrule(lr){6-6}'));
  assert.ok(tex.includes('Method & IPC & MetaDD & ConvNet & ResNet-18 & AlexNet & Avg. \\\\'));
  for (const l of body) assert.equal(width(l), 7, `row width: ${l}`);
  // DC 10 +MetaDD beats DC 10 base where both have results: bold, with the std in small type after it.
  const dc10 = body.find((l) => l.includes('+MetaDD') && l.includes('\\textbf{92.2}'));
  assert.ok(dc10, 'bold best entry');
  assert.ok(dc10.includes('\\textbf{92.2}{\\scriptsize$\\pm$0.2}'));
  const dc10base = body.find((l) => l.startsWith(' & 10 & base') || l.startsWith('DC\\_gm & 10 & base'));
  assert.ok(dc10base, 'DC 10 base row');
  assert.ok(dc10base.includes(' & -- & --'), 'missing alexnet entry and the complete-only average print --, not 0');
  assert.ok(body.some((l) => l.includes('$^\\dagger$')), 'partial entry marked');
  assert.ok(body.some((l) => l.startsWith('\\textit{Random} & 1 &') || l.startsWith('\\textit{Random} & \\textit{1}')), 'baseline in italics');
  assert.ok(tex.includes('\\multicolumn{3}{l}{\\textit{DC (published) \\#1}} & 91.7{\\scriptsize$\\pm$0.5} &  &  &  \\\\'));
  assert.ok(!/\\textbf\{91\.7/.test(tex), 'a published number is never marked best');
});

test('the effect table in LaTeX: signed differences with a math minus, std over seeds', () => {
  const tex = readFileSync(join(out, 'tables', 'main-effect.tex'), 'utf8');
  assert.match(tex, /\\begin\{tabular\}\{llcccc\}/, '2 row keys (no arm) + 3 architectures + the average');
  const dc10 = tex.split('\n').find((l) => l.startsWith(' & 10 &') || l.startsWith('DC\\_gm & 10 &'));
  assert.ok(dc10, tex);
  // Two seeds with the same difference: std 0.0 over n = 2 paired runs.
  assert.ok(dc10.includes('+1.0{\\scriptsize$\\pm$0.0} & $-$1.0{\\scriptsize$\\pm$0.0}'), dc10);
  assert.ok(!tex.includes('−'), 'no Unicode minus reaches pdflatex');
  const doc = readFileSync(join(out, 'report.tex'), 'utf8');
  assert.ok(doc.indexOf('\\label{tab:main}') < doc.indexOf('\\label{tab:main-effect}'), 'the effect table follows its table in report.tex (compiled below)');
  assert.ok(!doc.includes('−'));
});

test('LaTeX escaping of user text', () => {
  assert.equal(escapeLatex('DC_gm & 50% #1 {x} ~ ^ \\ $'), 'DC\\_gm \\& 50\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{} \\$');
  assert.equal(escapeLatex('97.4 ± 0.2 – †'), '97.4 $\\pm$ 0.2 -- $^\\dagger$');
  const doc = readFileSync(join(out, 'report.tex'), 'utf8');
  assert.ok(doc.includes('\\title{MetaDD \\& friends: 100\\% of\\_the results}'));
  assert.ok(doc.includes('\\usepackage{booktabs}') && doc.includes('\\includegraphics'));
  for (const m of doc.matchAll(/\\includegraphics\[[^\]]*\]\{([^}]+)\}/g)) assert.ok(existsSync(join(out, m[1])), `figure ${m[1]} exists`);
  assert.ok([...doc.matchAll(/\\includegraphics\[[^\]]*\]\{(plots\/[^}]+)\}/g)].every((m) => m[1].endsWith('.pdf')), 'plots are included as vector PDF');
});

const pdflatex = spawnSync('pdflatex', ['--version'], { encoding: 'utf8' });
const noTex = pdflatex.status === 0 ? false : 'pdflatex is not on PATH (install texlive-latex-base and texlive-latex-recommended to compile the LaTeX report)';

test('report.tex compiles with pdflatex, figures included', { skip: noTex, timeout: 180_000 }, () => {
  const run = spawnSync('pdflatex', ['-interaction=nonstopmode', '-halt-on-error', '-no-shell-escape', 'report.tex'], { cwd: out, encoding: 'utf8', timeout: 170_000 });
  const log = existsSync(join(out, 'report.log')) ? readFileSync(join(out, 'report.log'), 'latin1') : run.stdout;
  assert.equal(run.status, 0, `pdflatex failed:\n${log.split('\n').filter((l) => l.startsWith('!')).join('\n') || log.slice(-3000)}`);
  const pdf = readFileSync(join(out, 'report.pdf'));
  assert.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
  assert.ok(!/^! /m.test(log) && !log.includes('File `'), 'no errors and no missing files');
  const pages = /Output written on report\.pdf \((\d+) pages?/.exec(log);
  assert.ok(pages && Number(pages[1]) >= 3, `tables and figures on several pages (${pages?.[1]})`);
});
