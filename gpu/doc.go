// Package gpu implements backend.Backend on WebGPU through
// github.com/gogpu/wgpu: natively on Vulkan, Metal or DX12, and in the
// browser (GOOS=js) on navigator.gpu.
//
// Every operation is a WGSL compute shader (embedded from shaders/) that
// runs on buffers resident on the device. Operations are recorded into one
// command encoder and submitted together; nothing is read back to the host
// except what the caller asks for: Read, the loss of CrossEntropy and the
// sum of SumSquares. ReadBacks counts those transfers, so a test can check
// that a training step reads back nothing else.
//
// Storage: F32 buffers hold float32 values. Weights loaded in another dtype
// (F16, BF16, Q8_0, Q4_0, NF4) keep their encoded bytes on the device and
// are dequantized inside the shaders that read them, so a quantized model
// stays quantized in device memory. Arithmetic is f32 throughout.
//
// Views carry an element offset that the shaders add, so a view needs no
// alignment. Every buffer is bound as a whole; a buffer larger than the
// adapter's storage-binding limit cannot be created (Load and Zeros report
// it), see Limits.
//
// Errors: as on the CPU backend, Load, Write and Read return errors; the
// operations panic on programming errors (foreign or freed buffers, shapes
// that do not fit), naming the operation and the operand. A failure of the
// device itself (lost device, out of memory) is returned by the next Sync,
// Read or Write.
package gpu
