package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/tensor"
)

// Write writes a GGUF version 3 file holding kvs (in order) and tensors.
//
// Metadata value types follow the Go types: uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool and string, slices of
// any of those, and []any whose elements are such slices (an array of
// arrays). Other Go types, int included, are rejected so that the width
// written is always the one intended.
//
// Tensors may be of any dtype GGUF can hold (F32, F16, BF16, Q8_0, Q4_0, F64
// and the integer types I8..I64); shapes are written in ggml's order.
// alignment 0 means general.alignment from kvs, else 32. A non-default
// alignment is added to the metadata when kvs does not set it; it is an
// error for kvs to set a different one.
func Write(w io.Writer, kvs []KV, tensors []*tensor.Tensor, alignment int) error {
	if err := write(w, kvs, tensors, alignment); err != nil {
		return fmt.Errorf("gguf write: %w", err)
	}
	return nil
}

func write(w io.Writer, kvs []KV, tensors []*tensor.Tensor, alignment int) error {
	kvs, align, err := withAlignment(kvs, alignment)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, kv := range kvs {
		if seen[kv.Key] {
			return fmt.Errorf("duplicate key %q", kv.Key)
		}
		seen[kv.Key] = true
	}
	types := make([]uint32, len(tensors))
	names := map[string]bool{}
	for i, t := range tensors {
		if t == nil {
			return fmt.Errorf("tensor %d is nil", i)
		}
		if names[t.Name] {
			return fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		if len(t.Shape) > maxDims {
			return fmt.Errorf("tensor %q: %d dimensions, GGUF allows at most %d", t.Name, len(t.Shape), maxDims)
		}
		if err := t.Validate(); err != nil {
			return err
		}
		gt, ok := GGMLType(t.DType)
		if !ok {
			return fmt.Errorf("tensor %q: dtype %v has no GGUF equivalent", t.Name, t.DType)
		}
		types[i] = gt
	}

	e := &encoder{w: bufio.NewWriter(w)}
	e.bytes([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		if err := e.value(kv.Value, 0); err != nil {
			return fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
	}
	var offset int64 // relative to the data section
	for i, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for d := len(t.Shape) - 1; d >= 0; d-- {
			e.u64(uint64(t.Shape[d]))
		}
		e.u32(types[i])
		e.u64(uint64(offset))
		offset, _ = alignUp(offset+int64(len(t.Data)), int64(align))
	}
	e.pad(align)
	for _, t := range tensors {
		e.bytes(t.Data)
		e.pad(align)
	}
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

// withAlignment resolves the alignment to write and makes the metadata
// agree with it.
func withAlignment(kvs []KV, alignment int) ([]KV, int, error) {
	have := -1
	for _, kv := range kvs {
		if kv.Key == KeyAlignment {
			a, err := alignmentOf(kv.Value)
			if err != nil {
				return nil, 0, fmt.Errorf("metadata %q: %w", KeyAlignment, err)
			}
			if _, ok := kv.Value.(uint32); !ok {
				return nil, 0, fmt.Errorf("metadata %q must be a uint32, have %T", KeyAlignment, kv.Value)
			}
			have = a
		}
	}
	switch {
	case alignment == 0 && have > 0:
		return kvs, have, nil
	case alignment == 0:
		return kvs, DefaultAlignment, nil
	}
	if _, err := alignmentOf(int64(alignment)); err != nil {
		return nil, 0, err
	}
	if have > 0 && have != alignment {
		return nil, 0, fmt.Errorf("alignment %d disagrees with %s = %d", alignment, KeyAlignment, have)
	}
	if have < 0 && alignment != DefaultAlignment {
		kvs = append(kvs[:len(kvs):len(kvs)], KV{Key: KeyAlignment, Value: uint32(alignment)})
	}
	return kvs, alignment, nil
}

// WriteFile writes a GGUF file atomically: to a temporary file in the same
// directory, which is renamed over path only once it is complete.
func WriteFile(path string, kvs []KV, tensors []*tensor.Tensor) error {
	if err := writeFile(path, kvs, tensors); err != nil {
		return fmt.Errorf("gguf write %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, kvs []KV, tensors []*tensor.Tensor) error {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // discards the temporary file unless committed
	if err := write(f, kvs, tensors, 0); err != nil {
		return err
	}
	return f.Commit()
}

// encoder writes little-endian values, remembering the first error and the
// number of bytes written (for padding).
type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
	tmp [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(b)
	e.n += int64(n)
	e.err = err
}

func (e *encoder) u8(v uint8) { e.bytes([]byte{v}) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.tmp[:], v)
	e.bytes(e.tmp[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.tmp[:], v)
	e.bytes(e.tmp[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.tmp[:], v)
	e.bytes(e.tmp[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		n, err := e.w.WriteString(s)
		e.n += int64(n)
		e.err = err
	}
}

func (e *encoder) pad(align int) {
	end, _ := alignUp(e.n, int64(align))
	for e.n < end && e.err == nil {
		e.u8(0)
	}
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

var errUnsupportedValue = errors.New("unsupported value type")

// value writes a metadata value's type id followed by the value.
func (e *encoder) value(v any, depth int) error {
	t, ok := valueTypeOf(v)
	if !ok {
		return fmt.Errorf("%w %T", errUnsupportedValue, v)
	}
	e.u32(uint32(t))
	if t == typeArray {
		return e.array(v, depth+1)
	}
	e.scalar(v)
	return nil
}

// scalar writes the payload of a scalar whose type valueTypeOf accepted.
func (e *encoder) scalar(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.u8(boolByte(x))
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	}
}

func (e *encoder) array(v any, depth int) error {
	if depth > maxArrayDepth {
		return fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	if nested, ok := v.([]any); ok {
		e.u32(uint32(typeArray))
		e.u64(uint64(len(nested)))
		for i, inner := range nested {
			if t, ok := valueTypeOf(inner); !ok || t != typeArray {
				return fmt.Errorf("element %d of an array of arrays is %T, not a slice", i, inner)
			}
			if err := e.array(inner, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		return nil
	}
	switch s := v.(type) {
	case []uint8:
		writeSlice(e, typeUint8, s)
	case []int8:
		writeSlice(e, typeInt8, s)
	case []uint16:
		writeSlice(e, typeUint16, s)
	case []int16:
		writeSlice(e, typeInt16, s)
	case []uint32:
		writeSlice(e, typeUint32, s)
	case []int32:
		writeSlice(e, typeInt32, s)
	case []float32:
		writeSlice(e, typeFloat32, s)
	case []bool:
		writeSlice(e, typeBool, s)
	case []string:
		writeSlice(e, typeString, s)
	case []uint64:
		writeSlice(e, typeUint64, s)
	case []int64:
		writeSlice(e, typeInt64, s)
	case []float64:
		writeSlice(e, typeFloat64, s)
	default:
		return fmt.Errorf("%w %T", errUnsupportedValue, v)
	}
	return nil
}

func writeSlice[T any](e *encoder, t valueType, s []T) {
	e.u32(uint32(t))
	e.u64(uint64(len(s)))
	for _, x := range s {
		e.scalar(x)
	}
}

// valueTypeOf maps a Go value to the GGUF type that Write uses for it.
func valueTypeOf(v any) (valueType, bool) {
	switch v.(type) {
	case uint8:
		return typeUint8, true
	case int8:
		return typeInt8, true
	case uint16:
		return typeUint16, true
	case int16:
		return typeInt16, true
	case uint32:
		return typeUint32, true
	case int32:
		return typeInt32, true
	case float32:
		return typeFloat32, true
	case bool:
		return typeBool, true
	case string:
		return typeString, true
	case uint64:
		return typeUint64, true
	case int64:
		return typeInt64, true
	case float64:
		return typeFloat64, true
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32,
		[]bool, []string, []uint64, []int64, []float64, []any:
		return typeArray, true
	}
	return 0, false
}
