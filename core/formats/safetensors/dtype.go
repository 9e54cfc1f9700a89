package safetensors

import "github.com/graft-ml/graft/core/tensor"

// supportedDTypes maps the safetensors dtype names that graft can load to
// tensor dtypes. The names happen to match tensor.DType.String, but the map
// is explicit so that graft-only types (Q8_0, NF4, ...) are never accepted
// from or written to a safetensors file.
var supportedDTypes = map[string]tensor.DType{
	"F64":  tensor.F64,
	"F32":  tensor.F32,
	"F16":  tensor.F16,
	"BF16": tensor.BF16,
	"I64":  tensor.I64,
	"I32":  tensor.I32,
	"I16":  tensor.I16,
	"I8":   tensor.I8,
	"U64":  tensor.U64,
	"U32":  tensor.U32,
	"U16":  tensor.U16,
	"U8":   tensor.U8,
	"BOOL": tensor.Bool,
}

// knownUnsupportedBits gives the element width, in bits, of dtypes that the
// safetensors specification defines but graft cannot convert. Knowing the
// width still lets the parser check their byte lengths, so a file holding
// them is validated as strictly as any other.
var knownUnsupportedBits = map[string]int64{
	"F8_E4M3":     8,
	"F8_E5M2":     8,
	"F8_E8M0":     8,
	"F6_E2M3":     6,
	"F6_E3M2":     6,
	"F4":          4,
	"C64":         64,
	"F8_E4M3FNUZ": 8,
	"F8_E5M2FNUZ": 8,
}

// safetensorsName returns the dtype name written to a header, or false when
// dt has no safetensors representation.
func safetensorsName(dt tensor.DType) (string, bool) {
	name := dt.String()
	got, ok := supportedDTypes[name]
	return name, ok && got == dt
}
