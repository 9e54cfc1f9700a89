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
// (F16, BF16, NF4 and every ggml block type: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K to Q6_K, IQ4_NL, IQ4_XS) keep their encoded bytes on the device and are
// dequantized inside the shaders that read them, element by element as a
// matmul tile or an embedding row is loaded (shaders/weight_<dtype>.wgsl,
// one decoder per dtype), so a quantized model stays quantized in device
// memory. ggml's blocks are bound as u32 words and read byte-addressed,
// since WGSL has no 8- or 16-bit storage and blocks of 18, 22, 34, 110 or
// 210 bytes start anywhere in a word. Arithmetic is f32 throughout.
//
// Matrix products (shaders/matmul_tiled.wgsl, matmul.go) are
// register-tiled: a workgroup computes a tile of dst through two tiles of
// its operands in workgroup memory, each invocation 4x4 or 8x8 outputs in
// registers. The tile depends on the shape and fits the adapter's limits:
// 128x128 for large products, 64x64 otherwise, and 16 by 64 for thin
// products such as LoRA's with a rank up to 16, whose narrow side a square
// tile would pad. Operands whose stored rows are multiples of 4 elements at
// offsets that are too load four elements at a time (F32 as vec4, F16 as
// four halves in two words, which needs no ShaderF16); others, and every
// other dtype through its decoder, one at a time. Device buffers are
// padded to 16 bytes so the vec4 bindings reach every element. Pipelines
// are compiled once per kernel, tile and dtype.
//
// Views carry an element offset that the shaders add, so a view needs no
// alignment.
//
// Buffers over the binding limit are split. A buffer larger than the
// adapter's storage-binding limit (AdapterInfo.MaxBindingBytes) or its
// largest buffer, whichever is smaller, is stored as several device
// buffers, its parts, each holding consecutive elements and as many whole
// rows of the buffer's shape as fit (for quantized weights, at a block
// boundary; each NF4 part carries its own code book and scales). Each part
// is bound whole, so no binding offset is involved, and every operation
// walks its operands in spans: runs of elements, or of whole rows for
// row-by-row kernels, that lie in one part of every operand, with one
// dispatch per span. So a vocabulary-sized embedding or lm_head, or logits
// [rows, vocab], work at any size: MatMul splits M, N and K where its
// operands' parts end (the K blocks after the first accumulate), the
// embedding gather runs once per table part, CrossEntropy writes every
// span's losses into one buffer. Nothing extra is read back: Read
// gathers all parts in one transfer. The limits: a view whose rows
// straddle two parts cannot go through a row-by-row kernel, attention needs
// each sequence's q, k and v rows in one part, and vectors bound whole (an
// RMSNorm weight, a broadcast operand) must fit one binding; these panic
// with the operand's name.
//
// Errors: as on the CPU backend, Load, Write and Read return errors; the
// operations panic on programming errors (foreign or freed buffers, shapes
// that do not fit), naming the operation and the operand. A failure of the
// device itself (lost device, out of memory) is returned by the next Sync,
// Read or Write.
package gpu
