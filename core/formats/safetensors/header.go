package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/graft-ml/graft/core/tensor"
)

// MaxHeaderSize is the largest header graft accepts, the same bound as the
// reference implementation, so a corrupt length cannot make it allocate
// gigabytes before noticing.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding string-to-string metadata.
const metadataKey = "__metadata__"

// ErrUnsupportedDType is returned (wrapped) when reading a tensor whose dtype
// the safetensors format defines but graft cannot represent.
var ErrUnsupportedDType = errors.New("unsupported dtype")

// TensorInfo describes one tensor of a file without its data.
type TensorInfo struct {
	Name string
	// DType is tensor.Invalid when the file's dtype is not one graft
	// supports; DTypeName always holds the name written in the file.
	DType     tensor.DType
	DTypeName string
	Shape     tensor.Shape
	// Begin and End are byte offsets relative to the start of the data
	// section, that is, the first byte after the header.
	Begin, End int64
}

// Size is the tensor's length in bytes.
func (ti *TensorInfo) Size() int64 { return ti.End - ti.Begin }

// rawTensorInfo mirrors one header entry. Pointers tell a missing field from
// a zero one; unknown fields are ignored, as the reference parser does.
type rawTensorInfo struct {
	DType   *string  `json:"dtype"`
	Shape   *[]int64 `json:"shape"`
	Offsets *[]int64 `json:"data_offsets"`
}

// parsedHeader is the validated content of a header.
type parsedHeader struct {
	metadata map[string]string
	tensors  []TensorInfo // sorted by name
}

// parseHeader decodes and validates header JSON. dataSize is the number of
// bytes that follow the header, against which every offset is checked.
// Errors name the offending tensor but not the file; the caller adds that.
func parseHeader(header []byte, dataSize int64) (*parsedHeader, error) {
	if !utf8.Valid(header) {
		return nil, errors.New("header is not valid UTF-8")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, errors.New("header does not start with '{'")
	}
	// A streaming decoder lets us reject duplicate keys, which a map would
	// silently collapse into whichever came last.
	dec := json.NewDecoder(bytes.NewReader(header))
	if _, err := dec.Token(); err != nil { // the opening '{', checked above
		return nil, headerSyntaxError(dec, err)
	}
	h := &parsedHeader{}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, headerSyntaxError(dec, err)
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			return nil, fmt.Errorf("header: duplicate key %q", key)
		}
		seen[key] = true
		if key == metadataKey {
			if h.metadata, err = decodeMetadata(dec); err != nil {
				return nil, err
			}
			continue
		}
		var raw rawTensorInfo
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", key, err)
		}
		info, err := checkTensor(key, &raw, dataSize)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", key, err)
		}
		h.tensors = append(h.tensors, info)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, headerSyntaxError(dec, err)
	}
	// Only whitespace (the writer's space padding) may follow the object.
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, headerSyntaxError(dec, err)
		}
		return nil, fmt.Errorf("header: unexpected %v after the JSON object", tok)
	}
	if err := checkOverlaps(h.tensors); err != nil {
		return nil, err
	}
	sort.Slice(h.tensors, func(i, j int) bool { return h.tensors[i].Name < h.tensors[j].Name })
	return h, nil
}

func headerSyntaxError(dec *json.Decoder, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("header JSON near byte %d: %w", dec.InputOffset(), err)
}

// decodeMetadata reads the __metadata__ object, whose values must all be
// strings (null is accepted as "no metadata", as the reference does).
func decodeMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, headerSyntaxError(dec, err)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s is %s, want an object of strings", metadataKey, describeToken(tok))
	}
	meta := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, headerSyntaxError(dec, err)
		}
		key := tok.(string)
		if _, dup := meta[key]; dup {
			return nil, fmt.Errorf("%s: duplicate key %q", metadataKey, key)
		}
		val, err := dec.Token()
		if err != nil {
			return nil, headerSyntaxError(dec, err)
		}
		s, ok := val.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%q] is %s, want a string", metadataKey, key, describeToken(val))
		}
		meta[key] = s
	}
	if _, err := dec.Token(); err != nil {
		return nil, headerSyntaxError(dec, err)
	}
	return meta, nil
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	}
	return fmt.Sprintf("%v", tok)
}

// checkTensor validates one header entry on its own: required fields, a
// sane shape, offsets inside the data section, and a byte length that
// matches dtype and shape.
func checkTensor(name string, raw *rawTensorInfo, dataSize int64) (TensorInfo, error) {
	info := TensorInfo{Name: name}
	switch {
	case raw.DType == nil:
		return info, errors.New("missing dtype")
	case raw.Shape == nil:
		return info, errors.New("missing shape")
	case raw.Offsets == nil:
		return info, errors.New("missing data_offsets")
	}
	info.DTypeName = *raw.DType
	info.DType = supportedDTypes[info.DTypeName] // tensor.Invalid when absent
	info.Shape = make(tensor.Shape, len(*raw.Shape))
	for i, d := range *raw.Shape {
		if d < 0 || int64(int(d)) != d {
			return info, fmt.Errorf("invalid dimension %d in shape %v", d, *raw.Shape)
		}
		info.Shape[i] = int(d)
	}
	numel := info.Shape.Numel()
	if numel < 0 {
		return info, fmt.Errorf("shape %v overflows", info.Shape)
	}
	offs := *raw.Offsets
	if len(offs) != 2 {
		return info, fmt.Errorf("data_offsets has %d entries, want 2", len(offs))
	}
	info.Begin, info.End = offs[0], offs[1]
	if info.Begin < 0 || info.End < info.Begin {
		return info, fmt.Errorf("invalid data_offsets [%d, %d]", info.Begin, info.End)
	}
	if info.End > dataSize {
		return info, fmt.Errorf("data_offsets [%d, %d] run past the %d data bytes", info.Begin, info.End, dataSize)
	}
	want, known, err := byteLength(info.DType, info.DTypeName, numel)
	if err != nil {
		return info, fmt.Errorf("%s %v: %w", info.DTypeName, info.Shape, err)
	}
	if known && want != info.Size() {
		return info, fmt.Errorf("%s %v needs %d bytes, data_offsets [%d, %d] give %d", info.DTypeName, info.Shape, want, info.Begin, info.End, info.Size())
	}
	return info, nil
}

// byteLength returns the storage size of numel elements. known is false for
// dtype names outside the specification, whose size cannot be checked.
func byteLength(dt tensor.DType, name string, numel int64) (size int64, known bool, err error) {
	if dt != tensor.Invalid {
		size, err = dt.Bytes(numel)
		return size, true, err
	}
	bits, ok := knownUnsupportedBits[name]
	if !ok {
		return 0, false, nil
	}
	if numel > math.MaxInt64/bits {
		return 0, true, errors.New("size overflows")
	}
	if numel*bits%8 != 0 {
		return 0, true, fmt.Errorf("%d elements of %d bits are not a whole number of bytes", numel, bits)
	}
	return numel * bits / 8, true, nil
}

// checkOverlaps rejects tensors whose byte ranges share a byte. Gaps are
// allowed; empty tensors occupy no bytes and so overlap nothing.
func checkOverlaps(infos []TensorInfo) error {
	order := make([]*TensorInfo, 0, len(infos))
	for i := range infos {
		if infos[i].Size() > 0 {
			order = append(order, &infos[i])
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].Begin != order[j].Begin {
			return order[i].Begin < order[j].Begin
		}
		return order[i].Name < order[j].Name
	})
	for i := 1; i < len(order); i++ {
		prev, cur := order[i-1], order[i]
		if cur.Begin < prev.End {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q at [%d, %d]", cur.Name, cur.Begin, cur.End, prev.Name, prev.Begin, prev.End)
		}
	}
	return nil
}
