package gguf

import "fmt"

// valueType is a GGUF metadata value type id.
type valueType uint32

// The GGUF metadata value types, numbered as in the specification.
const (
	typeUint8   valueType = 0
	typeInt8    valueType = 1
	typeUint16  valueType = 2
	typeInt16   valueType = 3
	typeUint32  valueType = 4
	typeInt32   valueType = 5
	typeFloat32 valueType = 6
	typeBool    valueType = 7
	typeString  valueType = 8
	typeArray   valueType = 9
	typeUint64  valueType = 10
	typeInt64   valueType = 11
	typeFloat64 valueType = 12
)

var valueTypeNames = [...]string{
	typeUint8: "uint8", typeInt8: "int8", typeUint16: "uint16", typeInt16: "int16",
	typeUint32: "uint32", typeInt32: "int32", typeFloat32: "float32", typeBool: "bool",
	typeString: "string", typeArray: "array", typeUint64: "uint64", typeInt64: "int64",
	typeFloat64: "float64",
}

func (t valueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

func (t valueType) valid() bool { return t <= typeFloat64 }

// fixedSize is the encoded size of a scalar of type t, or 0 for strings and
// arrays, whose size depends on their contents.
func (t valueType) fixedSize() int64 {
	switch t {
	case typeUint8, typeInt8, typeBool:
		return 1
	case typeUint16, typeInt16:
		return 2
	case typeUint32, typeInt32, typeFloat32:
		return 4
	case typeUint64, typeInt64, typeFloat64:
		return 8
	}
	return 0
}
