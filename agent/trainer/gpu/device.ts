/**
 * The WebGPU device training runs on, when the chosen backend is 'webgpu' (backends.ts sets it;
 * any other choice clears it). Like tfjs's own active backend it is process-wide: one agent
 * trains on one device. Inference stays on tfjs's CPU-side backend (see Forecaster).
 */
let trainingDevice: GPUDevice | undefined;

export function setGpuTrainingDevice(device: GPUDevice | undefined): void {
  trainingDevice = device;
}

export function gpuTrainingDevice(): GPUDevice | undefined {
  return trainingDevice;
}
