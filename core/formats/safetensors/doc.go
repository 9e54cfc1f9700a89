// Package safetensors reads and writes the safetensors tensor format used by
// Hugging Face (model.safetensors, adapter_model.safetensors), including
// sharded checkpoints described by a model.safetensors.index.json.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// describing every tensor, then the raw little-endian tensor bytes:
//
//	{"weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//	 "__metadata__": {"format": "pt"}}
//
// Offsets are relative to the first byte after the header. The header is
// parsed and validated once; each tensor is then read with a single ReadAt,
// so a File works on anything that implements io.ReaderAt.
package safetensors
