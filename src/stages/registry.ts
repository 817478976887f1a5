import type { StageImpl, StageKind } from './contract.js';

/** Loads a stage implementation on demand, so a worker only pulls in what its stage needs. */
export async function loadStage(kind: StageKind): Promise<StageImpl> {
  switch (kind) {
    case 'dataset':
      return (await import('./dataset.js')).datasetStage as unknown as StageImpl;
    case 'pretrain':
      return (await import('./pretrain.js')).pretrainStage as unknown as StageImpl;
    case 'distill':
      return (await import('./distill.js')).distillStage as unknown as StageImpl;
    case 'metadd':
      return (await import('./metadd.js')).metaddStage as unknown as StageImpl;
    case 'eval':
      return (await import('./eval.js')).evalStage as unknown as StageImpl;
    case 'report':
      return (await import('./report.js')).reportStage as unknown as StageImpl;
    default:
      throw new Error(`stage kind '${kind}' is not implemented`);
  }
}
