import { buildModel } from '../nn/zoo.js';
import type { ArchSpec, Model } from '../nn/types.js';
import type { MethodContext } from './method.js';

/** A method's network, built once for the shape of the real data the first time it is needed. */
export function lazyModel(arch: ArchSpec): (ctx: MethodContext) => Model {
  let model: Model | undefined;
  return (ctx) => {
    const r = ctx.real;
    model ??= buildModel(arch, { channels: r.channels, height: r.height, width: r.width, classes: r.classes });
    return model;
  };
}
