import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageImpl } from './contract.js';
import { STAGE_VERSIONS } from './versions.js';
import { METADD_CHUNK } from '../distill/metadd/chunk.js';
import { driverCheckpointSeconds, drawRunSeed, inputDirs, publishedLearned, readContinuation, runSeedFor, writeContinuation } from './distill.js';
import { loadDatasetArtifact } from '../data/artifact.js';
import { readImageSet, writeImageSet } from '../distill/image-set.js';
import { pixelStats, trackPixelStats } from '../distill/pixel-stats.js';
import type { StartPoint } from '../distill/driver.js';
import type { DistillMethod, ImageOptimizer } from '../distill/method.js';
import type { AuxNet } from '../distill/metadd/aux.js';
import type { ImageBatch, SetDiagnostics } from '../distill/metadd/diagnostics.js';
import type { ArchSpec } from '../nn/types.js';
import { hashJson } from '../store/hash.js';
import type { Tracker } from '../tracking/records.js';

/** Parameters of the `metadd` stage (all of them go into its cache key; compileDag resolves every default). */
export interface MetaddParams {
  /** The base distill stage's key parameters (method, ipc, and the method's own parameters). */
  base: Record<string, unknown> & { method: string; ipc: number };
  /** The cell seed (the random stream continued is the base run's, read from its meta.json). */
  seed: number;
  /** 'control': weights 0 (they are 0 here too, so control stages of different lambdas are shared). */
  arm: 'control' | 'metadd';
  /** 'refine': continue the base set (input 'images'); 'joint': run the base method from its initialisation. */
  mode: 'refine' | 'joint';
  /** Refine: K, base-method iterations after the base run's last one. Joint: the base method's budget. */
  iterations: number;
  /** The auxiliary architectures (inputs aux0..auxM-1 in this order), for labels. */
  aux: ArchSpec[];
  lambda_ai: number;
  lambda_var: number;
  /** Our extension L_pos; absent (the planner leaves out a 0) or 0: the paper's loss. */
  lambda_pos?: number;
  /**
   * Weights as fractions of the base method's pixel-gradient norm (the lambdas above are then 0 and
   * unused): measured at the first image update, recorded in meta.json `calibration`.
   */
  relative_weights?: { ai: number; var: number; pos: number };
  tau: number;
  /** Images per tape for the MetaDD terms; absent: METADD_CHUNK (the planner leaves the default out of the key). */
  chunk?: number;
  image_lr: number;
  momentum: number;
  diagnostics: { real_per_class: number; overlays_per_class: number };
}

/** Relative weights: ||grad L_base|| is the mean over the first update of this many iterations. */
const CALIBRATION_DRAWS = 3;

function auxDigest(nets: AuxNet[]): string {
  const h = createHash('sha256');
  for (const net of nets) {
    for (const name of Object.keys(net.params).sort()) {
      const d = net.params[name].dataSync() as Float32Array;
      h.update(name).update(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    }
  }
  return h.digest('hex');
}

function logDiagnostics(track: Tracker, which: string, d: SetDiagnostics, labels: string[], step: number): void {
  if (d.ratios.meta !== null) track.metric(`diag.${which}.meta_ratio`, d.ratios.meta, step);
  d.ratios.heterogeneous.forEach((r, k) => {
    if (r !== null) track.metric(`diag.${which}.het_ratio.${k}_${labels[k]}`, r, step);
  });
  d.accuracy.forEach((a, k) => track.metric(`diag.${which}.aux_accuracy.${k}_${labels[k]}`, a, step));
}

/**
 * MetaDD (docs/metadd.md). Refine: continue the base method's run from its final set, optimiser state
 * and random stream for K more iterations with L = L_base + lambda_ai L_ai + lambda_var L_var through
 * the frozen auxiliary networks (control arm: weights 0). Joint: run the base method from its own
 * initialisation and stream for its whole budget with that L. Either way, log every term, the
 * meta-feature ratios on real images, the starting set and the aligned set, and CAM overlays.
 */
export const metaddStage: StageImpl<MetaddParams> = {
  kind: 'metadd',
  version: STAGE_VERSIONS.metadd,
  needsTensors: true,
  async run(ctx) {
    const { baseGradientNorm, initRng, runDistillation } = await import('../distill/driver.js');
    const { createMethod } = await import('../distill/methods.js');
    const { createNoBaseMethod } = await import('../distill/none.js');
    const { makeRealData } = await import('../distill/real-data.js');
    const { loadAuxNet, disposeAuxNet } = await import('../distill/metadd/aux.js');
    const { metaddExtraLoss, termGradientNorms } = await import('../distill/metadd/extra.js');
    const { nchwToTensor } = await import('../distill/layout.js');
    const { diagnoseSet, sampleRealImages, writeCamOverlay } = await import('../distill/metadd/diagnostics.js');

    const p = ctx.params;
    const dsView = ctx.inputs.dataset;
    const setView = ctx.inputs.images;
    const joint = p.mode === 'joint';
    if (!dsView || (!joint && !setView)) throw new Error(`metadd: needs inputs 'dataset'${joint ? '' : " and 'images'"}`);
    const ds = loadDatasetArtifact(dsView.dir);
    const m = ds.meta;
    const real = makeRealData(ds.trainX, ds.trainY, m);
    const mctx = { real, ipc: p.base.ipc, log: (s: string) => ctx.log(s) };
    const sgd: ImageOptimizer = { kind: 'sgd', lr: p.image_lr, momentum: p.momentum };
    let baseMethod: DistillMethod<unknown, unknown>;
    if (p.base.method === 'random') {
      baseMethod = createNoBaseMethod('random', sgd) as DistillMethod<unknown, unknown>;
    } else {
      const own = createMethod(p.base as unknown as Parameters<typeof createMethod>[0], m.name, inputDirs(ctx.inputs));
      // The base method's optimiser kind (SRe2L's Adam keeps its betas and schedule): the stage only
      // sets the learning rate (and SGD's momentum), so the base run's state can be continued.
      const optimizer: ImageOptimizer = own.optimizer.kind === 'sgd' ? sgd : { ...own.optimizer, lr: p.image_lr };
      baseMethod = { ...own, optimizer };
    }
    const optimizer = baseMethod.optimizer;
    let base: { images: Float32Array; labels: Int32Array; shape: [number, number, number, number]; meta: Record<string, unknown> };
    let continuation: Pick<StartPoint, 'optimizerState' | 'learned'> = {};
    let runSeed: string;
    if (joint) {
      // The distill stage's own stream (same parameters, seed and dataset), so that with zero weights
      // this stage is the base run to the byte; 'base' below is the method's initial set.
      runSeed = runSeedFor({ ...p.base, seed: p.seed }, dsView.key);
      const init = baseMethod.init(mctx, initRng(runSeed));
      base = { images: init.images, labels: init.labels, shape: [init.labels.length, m.channels, m.height, m.width], meta: { iterations: 0 } };
    } else {
      if (!setView) throw new Error("metadd: needs input 'images'");
      base = readImageSet(setView.dir);
      // Optimiser buffers and learned variables (MTT's syn_lr) of the base run, absent for 'random'.
      continuation = readContinuation(setView.dir);
      runSeed = typeof base.meta.run_seed === 'string' ? base.meta.run_seed : drawRunSeed(ctx.rng);
    }
    if (base.shape[0] !== m.classes * p.base.ipc) {
      throw new Error(`metadd: the base set has ${base.shape[0]} images, expected ${m.classes} classes x ipc ${p.base.ipc}`);
    }
    const start = typeof base.meta.iterations === 'number' ? base.meta.iterations : 0;

    const nets: AuxNet[] = [];
    try {
      for (let i = 0; i < p.aux.length; i++) {
        const view = ctx.inputs[`aux${i}`];
        if (!view) throw new Error(`metadd: missing input 'aux${i}'`);
        nets.push(loadAuxNet(view.dir));
      }
      const labels = nets.map((n) => n.label);
      const digestBefore = auxDigest(nets);

      const chunk = p.chunk ?? METADD_CHUNK;
      let weights = p.arm === 'metadd' ? { lambdaAi: p.lambda_ai, lambdaVar: p.lambda_var, lambdaPos: p.lambda_pos ?? 0 } : { lambdaAi: 0, lambdaVar: 0, lambdaPos: 0 };
      let calibration: Record<string, unknown> | null = null;
      if (p.arm === 'metadd' && p.relative_weights) {
        const r = p.relative_weights;
        // The mean over the first draws the stage will use (a DM network changes every iteration).
        const draws = Math.max(1, Math.min(CALIBRATION_DRAWS, p.iterations));
        let baseNorm = 0;
        for (let i = 0; i < draws; i++) {
          baseNorm += baseGradientNorm(baseMethod, mctx, { images: base.images, labels: base.labels, iteration: start + i, runSeed, learned: continuation.learned }) / draws;
        }
        if (!(baseNorm > 0)) throw new Error(`metadd: the base method's pixel gradient is ${baseNorm} at iteration ${start}: relative weights have nothing to scale against`);
        const syn = nchwToTensor(base.images, ...base.shape);
        // Only the terms with a positive fraction are measured: the others get weight 0 whatever their norm.
        const measured = (['ai', 'var', 'pos'] as const).filter((t) => r[t] > 0);
        const norms = termGradientNorms(nets, syn, base.labels, measured, chunk);
        syn.dispose();
        const scaled = (fraction: number, norm: number | undefined): number => (fraction > 0 && norm !== undefined && norm > 0 ? (fraction * baseNorm) / norm : 0);
        weights = { lambdaAi: scaled(r.ai, norms.ai), lambdaVar: scaled(r.var, norms.var), lambdaPos: scaled(r.pos, norms.pos) };
        calibration = { iterations: [start, start + draws], base_grad_norm: baseNorm, term_grad_norms: norms, relative_weights: r, lambda_ai: weights.lambdaAi, lambda_var: weights.lambdaVar, lambda_pos: weights.lambdaPos };
        ctx.log(`relative weights ${JSON.stringify(r)}: ||grad L_base|| ${baseNorm.toExponential(3)}, terms ${JSON.stringify(norms)} -> lambda_ai ${weights.lambdaAi.toExponential(3)}, lambda_var ${weights.lambdaVar.toExponential(3)}, lambda_pos ${weights.lambdaPos.toExponential(3)}`);
      }
      ctx.track.param('arm', p.arm);
      ctx.track.param('base_method', p.base.method);
      ctx.track.param('aux', labels.join(','));
      ctx.track.param('lambda_ai', weights.lambdaAi);
      ctx.track.param('lambda_var', weights.lambdaVar);
      ctx.track.param('lambda_pos', weights.lambdaPos);
      ctx.track.param('iterations', p.iterations);
      ctx.track.param('chunk', chunk);
      ctx.log(
        `${p.arm} on ${p.base.method} (iterations ${start}..${start + p.iterations}), aux ${labels.join(', ')}, ` +
          `lambda_ai ${weights.lambdaAi}, lambda_var ${weights.lambdaVar}, lambda_pos ${weights.lambdaPos}, image lr ${optimizer.lr}`,
      );

      const baseBatch: ImageBatch = { images: base.images, labels: base.labels, shape: base.shape };
      const realSample = sampleRealImages(ds, p.diagnostics.real_per_class, ctx.rng);
      const diagReal = diagnoseSet(nets, realSample, p.tau);
      const diagBase = diagnoseSet(nets, baseBatch, p.tau);
      logDiagnostics(ctx.track, 'real', diagReal, labels, start);
      logDiagnostics(ctx.track, joint ? 'init' : 'base', diagBase, labels, start);

      const result = await runDistillation(baseMethod, mctx, {
        start: { images: base.images, labels: base.labels, ...continuation, iteration: start },
        end: start + p.iterations,
        runSeed,
        extraLoss: metaddExtraLoss(nets, weights, chunk),
        checkpoint: { dir: join(ctx.scratchDir, 'driver'), seconds: driverCheckpointSeconds(), fingerprint: hashJson({ params: p, runSeed, start }) },
        track: ctx.track,
        progress: ctx.progress,
        signal: ctx.signal,
      });

      const digestAfter = auxDigest(nets);
      if (digestAfter !== digestBefore) throw new Error('metadd: the auxiliary networks changed during alignment (they must stay frozen)');
      const aligned: ImageBatch = { images: result.images, labels: result.labels, shape: result.shape };
      const diagAligned = diagnoseSet(nets, aligned, p.tau);
      logDiagnostics(ctx.track, 'aligned', diagAligned, labels, result.end);

      const overlays: string[] = [];
      if (p.diagnostics.overlays_per_class > 0) {
        const opts = { classes: m.classes, perClass: p.diagnostics.overlays_per_class, mean: m.mean, std: m.std };
        for (const [name, set] of [['real', realSample], [joint ? 'init' : 'base', baseBatch], ['aligned', aligned]] as const) {
          const file = `cams_${name}.png`;
          if (writeCamOverlay(join(ctx.outDir, file), nets, set, opts) > 0) overlays.push(file);
        }
      }
      const peakRssMb = process.resourceUsage().maxRSS / 1024;
      const pixels = writeImageSet(
        ctx.outDir,
        {
          images: result.images,
          labels: result.labels,
          shape: result.shape,
          meta: {
            method: p.base.method,
            ipc: p.base.ipc,
            classes: m.classes,
            iterations: result.end,
            base_iterations: start,
            run_seed: runSeed,
            metadd: { arm: p.arm, mode: p.mode, iterations: p.iterations, lambda_ai: weights.lambdaAi, lambda_var: weights.lambdaVar, lambda_pos: weights.lambdaPos, tau: p.tau, aux: labels, ...(p.chunk !== undefined ? { chunk: p.chunk } : {}) },
            image_lr: optimizer.lr,
            momentum: optimizer.kind === 'sgd' ? optimizer.momentum : null,
            optimizer,
            ...publishedLearned(baseMethod, result),
            calibration,
            final_terms: result.lastTerms,
            mean_terms: result.meanTerms,
            seconds_per_iteration: result.secondsPerIteration,
            cpu_seconds_per_iteration: result.cpuSecondsPerIteration,
            peak_rss_mb: peakRssMb,
            aux_digest: digestAfter,
          },
        },
        m,
      );
      writeContinuation(ctx.outDir, result);
      const diagnostics = { mode: p.mode, tau: p.tau, aux: labels, real: diagReal, [joint ? 'init' : 'base']: diagBase, aligned: diagAligned, overlays };
      writeFileSync(join(ctx.outDir, 'diagnostics.json'), `${JSON.stringify(diagnostics, null, 2)}\n`);
      // The set before the stage and after it, side by side: the drift of its pixels over the K iterations.
      trackPixelStats(ctx.track, pixelStats(base.images, base.shape, m), start, 'base.');
      trackPixelStats(ctx.track, pixels, result.end);
      ctx.track.metric('seconds_per_iteration', result.secondsPerIteration, result.end);
      ctx.track.metric('cpu_seconds_per_iteration', result.cpuSecondsPerIteration, result.end);
      ctx.track.metric('peak_rss_mb', peakRssMb, result.end);
      for (const f of ['grid.png', 'diagnostics.json', ...overlays]) ctx.track.artifact(f);
      const fmt = (r: number | null): string => (r === null ? '-' : r.toFixed(3));
      ctx.log(
        `meta-feature ratio: real ${fmt(diagReal.ratios.meta)}, base ${fmt(diagBase.ratios.meta)}, aligned ${fmt(diagAligned.ratios.meta)}; ` +
          `${result.secondsPerIteration.toFixed(3)} s per iteration, peak RSS ${peakRssMb.toFixed(0)} MB`,
      );
    } finally {
      for (const n of nets) disposeAuxNet(n);
    }
  },
};
