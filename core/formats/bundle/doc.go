// Package bundle reads and writes graft's adapter bundle: one msgpack file
// that carries an adapter's files, for the browser and for plugins, which
// have no directory to read a PEFT adapter from.
//
// # Format, version 1
//
// A bundle is one msgpack map with exactly these three keys (in this order
// when graft writes it; a reader accepts any order):
//
//	"format"  str   "graft-adapter"
//	"version" int   1
//	"files"   map   file name (str) -> contents (bin)
//
// The files are the adapter's files exactly as they lie in a Hugging Face
// PEFT adapter directory: adapter_config.json and adapter_model.safetensors
// (and whatever else a method saves). Names are plain file names (no path
// separator, not "." or ".."), or, for the parts of a mixed adapter stack
// (peft.Stack), one plain directory name, "/" and a plain file name
// ("lora/adapter_config.json"); at most MaxNameLen bytes, at most MaxFiles
// of them, sorted when graft writes them.
//
// # Why files rather than decoded tensors
//
// Carrying the PEFT files byte for byte means every PEFT method round-trips
// through a bundle with no second tensor format to keep in step with
// safetensors (dtypes, shapes, metadata, names), and a bundle unpacked
// into a directory is a PEFT adapter that Python loads as it is. A
// JavaScript consumer stays simple: any msgpack decoder (for instance
// @msgpack/msgpack's decode) gives an object whose files are Uint8Arrays;
// adapter_config.json is JSON text, and safetensors is an 8-byte
// little-endian header length, a JSON header of {name: {dtype, shape,
// data_offsets}} and the raw little-endian data, a dozen lines to read.
//
// # Versions
//
// A reader refuses a version it does not know and keys it does not know,
// so that a newer bundle is never half read: a change that an older graft
// could misread gets a new version number.
package bundle
