package gguf

import "math"

// Get returns the value of a metadata key.
func (f *File) Get(key string) (any, bool) {
	if f.kvIndex == nil {
		// A File built by hand rather than by Parse: search linearly.
		for _, kv := range f.KVs {
			if kv.Key == key {
				return kv.Value, true
			}
		}
		return nil, false
	}
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

// Architecture returns general.architecture ("llama", ...), or "" if unset.
func (f *File) Architecture() string {
	s, _ := f.String(KeyArchitecture)
	return s
}

// ArchKey returns the architecture-specific key for suffix, such as
// "llama.block_count" for "block_count".
func (f *File) ArchKey(suffix string) string { return f.Architecture() + "." + suffix }

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Uint returns a value of any integer type that is not negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Get(key)
	return asUint(v)
}

// Int returns a value of any integer type that fits in an int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	u, ok := asUint(v)
	if !ok || u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// Float returns a value of any numeric type as float64.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := f.Int(key); ok {
		return float64(i), true
	}
	if u, ok := asUint(v); ok {
		return float64(u), true
	}
	return 0, false
}

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Get(key)
	s, ok := v.([]string)
	return s, ok
}

// Float32s returns an array of float32.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Get(key)
	s, ok := v.([]float32)
	return s, ok
}

// Int32s returns an array of int32, or of uint32 converted to int32 when
// every element fits.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Get(key)
	switch s := v.(type) {
	case []int32:
		return s, true
	case []uint32:
		out := make([]int32, len(s))
		for i, u := range s {
			if u > math.MaxInt32 {
				return nil, false
			}
			out[i] = int32(u)
		}
		return out, true
	}
	return nil, false
}

// Tensor returns the description of a tensor.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	if f.tenIndex == nil {
		for i := range f.Tensors {
			if f.Tensors[i].Name == name {
				return &f.Tensors[i], true
			}
		}
		return nil, false
	}
	i, ok := f.tenIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// asUint converts a non-negative value of any integer type to uint64.
func asUint(v any) (uint64, bool) {
	var i int64
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		i = int64(x)
	case int16:
		i = int64(x)
	case int32:
		i = int64(x)
	case int64:
		i = x
	default:
		return 0, false
	}
	if i < 0 {
		return 0, false
	}
	return uint64(i), true
}
