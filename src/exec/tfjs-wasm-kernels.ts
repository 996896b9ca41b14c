/** Placeholder: gradient kernels the tfjs wasm backend lacks are registered here (training issue). */
export function registerWasmGradKernels(): void {}
