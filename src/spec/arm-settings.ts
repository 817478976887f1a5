/** The MetaDD arms of a cell (`metadd.arm`). */
export type MetaddArm = 'none' | 'control' | 'metadd';

/** The settings that weigh the MetaDD terms; the control arm runs with all of them at zero. */
const WEIGHT_SETTINGS = ['metadd.lambda_ai', 'metadd.lambda_var', 'metadd.lambda_pos', 'metadd.relative_weights'];

const within = (path: string, setting: string): boolean => path === setting || path.startsWith(`${setting}.`);

/**
 * Whether a cell of `arm` never reads the setting at `path`: the base set ('none') reads no MetaDD
 * setting but the arm itself, the control arm none of the weights (src/dag/compile.ts zeroes them).
 * A report shows such a value as unused and pairs the arm's rows regardless of it.
 */
export function armIgnores(arm: MetaddArm, path: string): boolean {
  if (arm === 'none') return within(path, 'metadd') && path !== 'metadd.arm';
  if (arm === 'control') return WEIGHT_SETTINGS.some((s) => within(path, s));
  return false;
}
