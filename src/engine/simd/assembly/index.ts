// Entry of kernels.wasm (AssemblyScript; built by `npm run build:wasm`, loaded by ../module.ts). The host
// calls setGeometry before each kernel.
export { conv2dBackpropFilter, conv2dBackpropFilterScratchBytes } from './conv2d_backprop_filter';
export { conv2dBackpropInput, conv2dBackpropInputScratchBytes } from './conv2d_backprop_input';
export { setGeometry } from './geometry';
