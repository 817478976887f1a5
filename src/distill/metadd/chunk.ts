/**
 * Images per tape for the MetaDD terms unless `metadd.chunk` says otherwise. Both terms are means of
 * per-image quantities (batch norm runs on running statistics), so chunking is exact up to float
 * summation order; it bounds the tape to one chunk's activations through every auxiliary network (a whole
 * IPC-10 set through ResNet-18 and VGG-11 exceeds the 4 GB WASM heap). Another size gives other last
 * bits, so the planner puts `chunk` in the stage key only when it differs from this. Free of tfjs, for
 * the planner.
 */
export const METADD_CHUNK = 10;
