import type { Rng } from '../util/rng.js';
import { gatherRows } from './layout.js';
import type { InitialSet, MethodContext } from './method.js';
import { imageSize, sampleClassIndices } from './real-data.js';

export type InitKind = 'real' | 'noise';

/**
 * The starting synthetic set, class-major: `real` takes ipc distinct random training images of each
 * class (reference `get_images(c, ipc)`), `noise` draws every pixel from N(0, 1) (reference
 * `torch.randn`, i.e. noise in the normalised space).
 */
export function initialSet(ctx: MethodContext, kind: InitKind, rng: Rng): InitialSet {
  const { real, ipc } = ctx;
  const size = imageSize(real);
  const n = real.classes * ipc;
  const labels = new Int32Array(n);
  for (let c = 0; c < real.classes; c++) labels.fill(c, c * ipc, (c + 1) * ipc);
  if (kind === 'noise') {
    const images = new Float32Array(n * size);
    for (let i = 0; i < images.length; i++) images[i] = rng.normal();
    return { images, labels };
  }
  const indices = new Int32Array(n);
  for (let c = 0; c < real.classes; c++) {
    if (real.byClass[c].length < ipc) {
      throw new Error(`class ${c} has ${real.byClass[c].length} training images, fewer than ipc = ${ipc}`);
    }
    indices.set(sampleClassIndices(real, c, ipc, rng.child(`class-${c}`)), c * ipc);
  }
  return { images: gatherRows(real.x, size, indices), labels };
}
