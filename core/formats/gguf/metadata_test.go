package gguf

import (
	"bytes"
	"math"
	"reflect"
	"testing"
)

func TestAccessors(t *testing.T) {
	kvs := []KV{
		{"general.architecture", "llama"},
		{"u8", uint8(7)},
		{"i8.neg", int8(-3)},
		{"i32", int32(12)},
		{"u64.max", uint64(math.MaxUint64)},
		{"i64.min", int64(math.MinInt64)},
		{"f32", float32(0.25)},
		{"f64", 2.5},
		{"bool", true},
		{"strs", []string{"a", "b"}},
		{"f32s", []float32{1, 2}},
		{"i32s", []int32{-1, 2}},
		{"u32s", []uint32{1, 2}},
		{"u32s.big", []uint32{1, math.MaxUint32}},
	}
	var buf bytes.Buffer
	if err := Write(&buf, kvs, nil, 0); err != nil {
		t.Fatal(err)
	}
	parsed, err := parseBytes(buf.Bytes(), "meta.gguf")
	if err != nil {
		t.Fatal(err)
	}
	// A File assembled by hand, without Parse's indexes, answers alike.
	manual := &File{KVs: kvs}
	for _, f := range []*File{parsed, manual} {
		type result struct {
			v  any
			ok bool
		}
		r := func(v any, ok bool) result { return result{v, ok} }
		checks := []struct {
			name      string
			got, want result
		}{
			{"Architecture", r(f.Architecture(), true), r("llama", true)},
			{"Get missing", r(f.Get("nope")), r(nil, false)},
			{"String", r(f.String("general.architecture")), r("llama", true)},
			{"String of int", r(f.String("u8")), r("", false)},
			{"Uint u8", r(f.Uint("u8")), r(uint64(7), true)},
			{"Uint i32", r(f.Uint("i32")), r(uint64(12), true)},
			{"Uint negative", r(f.Uint("i8.neg")), r(uint64(0), false)},
			{"Uint max", r(f.Uint("u64.max")), r(uint64(math.MaxUint64), true)},
			{"Uint float", r(f.Uint("f32")), r(uint64(0), false)},
			{"Int negative", r(f.Int("i8.neg")), r(int64(-3), true)},
			{"Int min", r(f.Int("i64.min")), r(int64(math.MinInt64), true)},
			{"Int u8", r(f.Int("u8")), r(int64(7), true)},
			{"Int too big", r(f.Int("u64.max")), r(int64(0), false)},
			{"Int missing", r(f.Int("nope")), r(int64(0), false)},
			{"Float f32", r(f.Float("f32")), r(0.25, true)},
			{"Float f64", r(f.Float("f64")), r(2.5, true)},
			{"Float int", r(f.Float("i8.neg")), r(-3.0, true)},
			{"Float u64", r(f.Float("u64.max")), r(float64(math.MaxUint64), true)},
			{"Float string", r(f.Float("general.architecture")), r(0.0, false)},
			{"Bool", r(f.Bool("bool")), r(true, true)},
			{"Bool of int", r(f.Bool("u8")), r(false, false)},
			{"Strings", r(f.Strings("strs")), r([]string{"a", "b"}, true)},
			{"Float32s", r(f.Float32s("f32s")), r([]float32{1, 2}, true)},
			{"Float32s of ints", r(f.Float32s("i32s")), r([]float32(nil), false)},
			{"Int32s", r(f.Int32s("i32s")), r([]int32{-1, 2}, true)},
			{"Int32s from uint32", r(f.Int32s("u32s")), r([]int32{1, 2}, true)},
			{"Int32s overflow", r(f.Int32s("u32s.big")), r([]int32(nil), false)},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
			}
		}
	}
}

func TestTensorLookup(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, nil, testTensors(t), 0); err != nil {
		t.Fatal(err)
	}
	f, err := parseBytes(buf.Bytes(), "t.gguf")
	if err != nil {
		t.Fatal(err)
	}
	manual := &File{Tensors: f.Tensors}
	for _, g := range []*File{f, manual} {
		ti, ok := g.Tensor("odd")
		if !ok || ti.Name != "odd" || ti.Size != 60 {
			t.Errorf("Tensor(odd) = %+v, %v", ti, ok)
		}
		if _, ok := g.Tensor("nope"); ok {
			t.Error("Tensor(nope) found")
		}
	}
}
