import { replaceGradient } from '../registry.js';
import { elementwiseGradients } from './math.js';
import { nnGradients } from './nn.js';
import { shapeGradients } from './shape.js';

/** Every gradient we register, by kernel name (for docs and tests). */
export const engineGradients = [...elementwiseGradients, ...shapeGradients, ...nnGradients];

/** Registers all gradients globally (they apply to every backend); idempotent. */
export function registerGradients(): void {
  for (const g of engineGradients) replaceGradient(g);
}
