import { markdownTable } from 'markdown-table';
import type { Diagnosis, DiagnosisGroup, SetDiagnosis, StageDiagnosis } from '../report/diagnose.js';

const ratio = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : v.toFixed(3));

/** `metadd diagnose` as Markdown tables (one per set of auxiliary networks), or as JSON. */
export function renderDiagnosis(d: Diagnosis, json: boolean): string {
  if (json) return `${JSON.stringify(d, null, 2)}\n`;
  const taus = d.taus.map((t) => String(t));
  const out = [
    `${d.spec}: what the auxiliary networks see in each set (docs/metadd.md). meta: pixels where every network's CAM reaches tau, ` +
      `over those where any does; het: where only that network's does (at tau ${taus[0]}); acc: the share of the set it classifies as labelled. ` +
      "Pixel space, no network: r mean: an image's correlation with its class's mean training image, averaged; nearest mean: the share whose most correlated class mean is its own class's.",
    '',
  ];
  for (const g of d.groups) out.push(...renderGroup(g, taus), '');
  if (d.missing.length > 0) out.push(`not in the store yet, so left out: ${d.missing.join('; ')}`, '');
  return out.join('\n');
}

function renderGroup(g: DiagnosisGroup, taus: string[]): string[] {
  const header = ['stage', 'set', 'images', ...taus.map((t) => `meta ${t}`), ...g.aux.map((a) => `het ${a}`), ...g.aux.map((a) => `acc ${a}`), 'r mean', 'nearest mean'];
  const rows: string[][] = [];
  for (const s of g.stages) {
    let first = true;
    for (const which of ['real', 'base', 'aligned'] as const) {
      const set = s[which];
      if (!set) continue;
      const layout = set.layout ? [set.layout.ownCorrelation.toFixed(3), set.layout.nearestMean.toFixed(2)] : ['–', '–'];
      rows.push([first ? s.label : '', which, String(set.images), ...set.meta.map(ratio), ...set.heterogeneous.map((h) => ratio(h[0])), ...set.accuracy.map((a) => a.toFixed(2)), ...layout]);
      first = false;
    }
  }
  const lines = [`auxiliaries: ${g.aux.join(', ')}`, ''];
  if (rows.length > 0) lines.push(markdownTable([header, ...rows], { align: ['l', 'l', ...header.slice(2).map(() => 'r' as const)] }), '');
  lines.push(...compareArms(g.stages, taus));
  return lines;
}

/** Per arm: on how many stages the output's meta ratio is above its base set's, at each threshold. */
function compareArms(stages: StageDiagnosis[], taus: string[]): string[] {
  const lines: string[] = [];
  for (const arm of ['metadd', 'control'] as const) {
    const pairs = stages.filter((s) => s.arm === arm && s.base && s.aligned) as (StageDiagnosis & { base: SetDiagnosis; aligned: SetDiagnosis })[];
    if (pairs.length === 0) continue;
    const parts = taus.map((t, i) => {
      const deltas = pairs.map((s) => (s.aligned.meta[i] ?? Number.NaN) - (s.base.meta[i] ?? Number.NaN)).filter((x) => Number.isFinite(x));
      const above = deltas.filter((x) => x > 0).length;
      const mean = deltas.length > 0 ? deltas.reduce((a, b) => a + b, 0) / deltas.length : Number.NaN;
      return `tau ${t}: above on ${above} of ${deltas.length} (mean ${mean >= 0 ? '+' : ''}${mean.toFixed(3)})`;
    });
    lines.push(`${arm} arm, meta ratio of its set against the base set's: ${parts.join('; ')}`);
  }
  return lines;
}
