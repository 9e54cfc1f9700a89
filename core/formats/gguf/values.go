package gguf

import (
	"fmt"
	"math"
)

// readValue decodes one metadata value of type t. depth counts the arrays
// that enclose it.
func (c *cursor) readValue(t valueType, depth int) (any, error) {
	switch t {
	case typeUint8:
		return c.u8("uint8")
	case typeInt8:
		v, err := c.u8("int8")
		return int8(v), err
	case typeUint16:
		return c.u16("uint16")
	case typeInt16:
		v, err := c.u16("int16")
		return int16(v), err
	case typeUint32:
		return c.u32("uint32")
	case typeInt32:
		v, err := c.u32("int32")
		return int32(v), err
	case typeFloat32:
		v, err := c.u32("float32")
		return math.Float32frombits(v), err
	case typeBool:
		return c.boolean()
	case typeString:
		return c.str("string")
	case typeArray:
		return c.array(depth + 1)
	case typeUint64:
		return c.u64("uint64")
	case typeInt64:
		v, err := c.u64("int64")
		return int64(v), err
	case typeFloat64:
		v, err := c.u64("float64")
		return math.Float64frombits(v), err
	}
	return nil, fmt.Errorf("unknown value type %d at offset %d", uint32(t), c.off-4)
}

func (c *cursor) boolean() (bool, error) {
	v, err := c.u8("bool")
	if err != nil {
		return false, err
	}
	if v > 1 {
		return false, fmt.Errorf("bool at offset %d has value %d, want 0 or 1", c.off-1, v)
	}
	return v == 1, nil
}

// minEncodedSize is the fewest bytes a value of type t can occupy: a
// string is at least its length, an array at least its type and count.
func (c *cursor) minEncodedSize(t valueType) int64 {
	switch t {
	case typeString:
		return c.countSize()
	case typeArray:
		return 4 + c.countSize()
	}
	return t.fixedSize()
}

// array decodes an array (its element type, count and elements) into a
// typed slice, or []any for an array of arrays.
func (c *cursor) array(depth int) (any, error) {
	if depth > maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d at offset %d", maxArrayDepth, c.off)
	}
	et, err := c.u32("array element type")
	if err != nil {
		return nil, err
	}
	t := valueType(et)
	if !t.valid() {
		return nil, fmt.Errorf("array with unknown element type %d at offset %d", et, c.off-4)
	}
	n, err := c.boundedCount(c.minEncodedSize(t), "array of "+t.String()+" count")
	if err != nil {
		return nil, err
	}
	switch t {
	case typeUint8:
		return readFixed(c, n, t, func(b []byte) uint8 { return b[0] })
	case typeInt8:
		return readFixed(c, n, t, func(b []byte) int8 { return int8(b[0]) })
	case typeUint16:
		return readFixed(c, n, t, le16)
	case typeInt16:
		return readFixed(c, n, t, func(b []byte) int16 { return int16(le16(b)) })
	case typeUint32:
		return readFixed(c, n, t, le32)
	case typeInt32:
		return readFixed(c, n, t, func(b []byte) int32 { return int32(le32(b)) })
	case typeFloat32:
		return readFixed(c, n, t, func(b []byte) float32 { return math.Float32frombits(le32(b)) })
	case typeUint64:
		return readFixed(c, n, t, le64)
	case typeInt64:
		return readFixed(c, n, t, func(b []byte) int64 { return int64(le64(b)) })
	case typeFloat64:
		return readFixed(c, n, t, func(b []byte) float64 { return math.Float64frombits(le64(b)) })
	case typeBool:
		out := make([]bool, n)
		for i := range out {
			if out[i], err = c.boolean(); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	case typeString:
		out := make([]string, n)
		for i := range out {
			if out[i], err = c.str("string"); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	}
	out := make([]any, n)
	for i := range out {
		if out[i], err = c.array(depth + 1); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return out, nil
}

// readFixed decodes n fixed-size elements with one bounded read.
func readFixed[T any](c *cursor, n int, t valueType, decode func([]byte) T) ([]T, error) {
	size := t.fixedSize()
	b, err := c.next(int64(n)*size, "array of "+t.String())
	if err != nil {
		return nil, err
	}
	out := make([]T, n)
	for i := range out {
		out[i] = decode(b[int64(i)*size:])
	}
	return out, nil
}
