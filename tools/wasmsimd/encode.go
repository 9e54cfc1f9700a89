package main

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Value types and the encoding's constants (WebAssembly core spec 2.0, with
// the fixed-width SIMD proposal's opcodes under the 0xFD prefix).
const (
	i32  = 0x7F
	f32  = 0x7D
	v128 = 0x7B
)

// module is the little of a WebAssembly module these kernels need: one
// imported memory and exported functions.
type module struct {
	memModule, memName string
	funcs              []*fn
}

// fn is one exported function: its signature, locals and body.
type fn struct {
	name    string
	params  []byte
	locals  []byte // the types of the locals after the parameters
	code    bytes.Buffer
	results []byte
}

func newFn(name string, params ...byte) *fn {
	return &fn{name: name, params: params}
}

// local declares a local of type t and returns its index.
func (f *fn) local(t byte) uint32 {
	f.locals = append(f.locals, t)
	return uint32(len(f.params) + len(f.locals) - 1)
}

func (f *fn) op(b ...byte) { f.code.Write(b) }

func (f *fn) uleb(v uint32) { f.code.Write(uleb(v)) }

func (f *fn) get(x uint32) { f.op(0x20); f.uleb(x) }
func (f *fn) set(x uint32) { f.op(0x21); f.uleb(x) }
func (f *fn) tee(x uint32) { f.op(0x22); f.uleb(x) }
func (f *fn) i32c(v int32) { f.op(0x41); f.code.Write(sleb(v)) }
func (f *fn) f32c(v float32) {
	f.op(0x43)
	f.code.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
}

// args starts a function whose one parameter is the byte offset of its
// arguments, n 32-bit words: it loads them into n new i32 locals. One
// parameter, not n: every argument a call from Go passes through
// syscall/js costs a conversion, and the words cost nothing.
func (f *fn) args(n int) []uint32 {
	ls := make([]uint32, n)
	for i := range ls {
		ls[i] = f.local(i32)
		f.get(0)
		f.i32LoadAt(uint32(4 * i))
		f.set(ls[i])
	}
	return ls
}

func (f *fn) i32LoadAt(offset uint32) { f.op(0x28, 2); f.uleb(offset) }
func (f *fn) f32LoadAt(offset uint32) { f.op(0x2A, 2); f.uleb(offset) }

// Integer and float operators.
func (f *fn) i32Add()   { f.op(0x6A) }
func (f *fn) i32Sub()   { f.op(0x6B) }
func (f *fn) i32Mul()   { f.op(0x6C) }
func (f *fn) i32And()   { f.op(0x71) }
func (f *fn) i32GtS()   { f.op(0x4A) }
func (f *fn) i32Ne()    { f.op(0x47) }
func (f *fn) f32Add()   { f.op(0x92) }
func (f *fn) f32Mul()   { f.op(0x94) }
func (f *fn) f32Load()  { f.op(0x2A, 2, 0) } // align 4, offset 0
func (f *fn) f32Store() { f.op(0x38, 2, 0) } // align 4, offset 0

// SIMD operators.
func (f *fn) simd(op uint32) { f.op(0xFD); f.uleb(op) }

// v128Load loads 16 bytes at the address on the stack plus offset (no
// alignment promised: rows of Go slices are 4-byte aligned).
func (f *fn) v128Load(offset uint32)  { f.simd(0x00); f.uleb(0); f.uleb(offset) }
func (f *fn) v128Store(offset uint32) { f.simd(0x0B); f.uleb(0); f.uleb(offset) }

// load32Splat loads one float32 into every lane.
func (f *fn) load32Splat() { f.simd(0x09); f.uleb(2); f.uleb(0) }
func (f *fn) v128Zero() {
	f.simd(0x0C)
	f.code.Write(make([]byte, 16))
}
func (f *fn) f32x4Splat() { f.simd(0x13) }
func (f *fn) f32x4Add()   { f.simd(0xE4) }
func (f *fn) f32x4Mul()   { f.simd(0xE6) }

// Control. Every block here is typeless (0x40).
func (f *fn) block(body func()) { f.op(0x02, 0x40); body(); f.op(0x0B) }
func (f *fn) loop(body func())  { f.op(0x03, 0x40); body(); f.op(0x0B) }
func (f *fn) brIf(depth uint32) { f.op(0x0D); f.uleb(depth) }
func (f *fn) br(depth uint32)   { f.op(0x0C); f.uleb(depth) }

// ifElse runs then when the i32 on the stack is non-zero, else els.
func (f *fn) ifElse(then, els func()) {
	f.op(0x04, 0x40)
	then()
	if els != nil {
		f.op(0x05)
		els()
	}
	f.op(0x0B)
}

// forStep emits: for ; x+step <= end; x += step { body }, with x and end
// i32 locals (end as a value computed by endVal). The body must leave the
// stack as it found it and branch nowhere outside itself.
func (f *fn) forStep(x uint32, step int32, endVal func(), body func()) {
	f.block(func() {
		f.loop(func() {
			f.get(x)
			f.i32c(step)
			f.i32Add()
			endVal()
			f.i32GtS()
			f.brIf(1)
			body()
			f.get(x)
			f.i32c(step)
			f.i32Add()
			f.set(x)
			f.br(0)
		})
	})
}

// addTo emits x += v for an i32 local x and an i32 local v.
func (f *fn) addTo(x, v uint32) {
	f.get(x)
	f.get(v)
	f.i32Add()
	f.set(x)
}

// encode writes the module's binary form.
func (m *module) encode() []byte {
	var out bytes.Buffer
	out.Write([]byte{0x00, 'a', 's', 'm', 1, 0, 0, 0})
	section := func(id byte, body []byte) {
		out.WriteByte(id)
		out.Write(uleb(uint32(len(body))))
		out.Write(body)
	}
	// Types: one per function, in order.
	var types []byte
	types = append(types, uleb(uint32(len(m.funcs)))...)
	for _, f := range m.funcs {
		types = append(types, 0x60)
		types = append(types, vec(f.params)...)
		types = append(types, vec(f.results)...)
	}
	section(1, types)
	// Imports: the memory, with no maximum, at least one page (Go's
	// memory is always larger).
	var imports []byte
	imports = append(imports, uleb(1)...)
	imports = append(imports, name(m.memModule)...)
	imports = append(imports, name(m.memName)...)
	imports = append(imports, 0x02, 0x00)
	imports = append(imports, uleb(1)...)
	section(2, imports)
	// Functions: function i has type i.
	var funcs []byte
	funcs = append(funcs, uleb(uint32(len(m.funcs)))...)
	for i := range m.funcs {
		funcs = append(funcs, uleb(uint32(i))...)
	}
	section(3, funcs)
	var exports []byte
	exports = append(exports, uleb(uint32(len(m.funcs)))...)
	for i, f := range m.funcs {
		exports = append(exports, name(f.name)...)
		exports = append(exports, 0x00)
		exports = append(exports, uleb(uint32(i))...)
	}
	section(7, exports)
	var code []byte
	code = append(code, uleb(uint32(len(m.funcs)))...)
	for _, f := range m.funcs {
		var body []byte
		// Locals as runs of one type.
		var runs [][2]uint32
		for _, t := range f.locals {
			if n := len(runs); n > 0 && runs[n-1][1] == uint32(t) {
				runs[n-1][0]++
			} else {
				runs = append(runs, [2]uint32{1, uint32(t)})
			}
		}
		body = append(body, uleb(uint32(len(runs)))...)
		for _, r := range runs {
			body = append(body, uleb(r[0])...)
			body = append(body, byte(r[1]))
		}
		body = append(body, f.code.Bytes()...)
		body = append(body, 0x0B)
		code = append(code, uleb(uint32(len(body)))...)
		code = append(code, body...)
	}
	section(10, code)
	return out.Bytes()
}

func vec(b []byte) []byte { return append(uleb(uint32(len(b))), b...) }

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(v int32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// More operators, for the elementwise kernels.
func (f *fn) i32LtS()  { f.op(0x48) }
func (f *fn) i32Eqz()  { f.op(0x45) }
func (f *fn) selectV() { f.op(0x1B) } // a, b, cond -> cond ? a : b
func (f *fn) f32Max()  { f.op(0x97) } // NaN-propagating
func (f *fn) f32Div()  { f.op(0x95) }

func (f *fn) f32x4Sub() { f.simd(0xE5) }
func (f *fn) f32x4Div() { f.simd(0xE7) }
func (f *fn) f32x4Neg() { f.simd(0xE1) }

// f32x4Max propagates NaN; Pmin and Pmax are b < a ? b : a and
// a < b ? b : a, which keep a NaN first operand.
func (f *fn) f32x4Max()        { f.simd(0xE9) }
func (f *fn) f32x4Pmin()       { f.simd(0xEA) }
func (f *fn) f32x4Pmax()       { f.simd(0xEB) }
func (f *fn) f32x4Nearest()    { f.simd(0x6A) } // ties to even
func (f *fn) i32x4TruncSat()   { f.simd(0xF8) } // i32x4.trunc_sat_f32x4_s
func (f *fn) i32x4Shl()        { f.simd(0xAB) }
func (f *fn) i32x4Add()        { f.simd(0xAE) }
func (f *fn) f32x4Lane(l byte) { f.simd(0x1F); f.op(l) }

// f32x4Const pushes v in all four lanes.
func (f *fn) f32x4Const(v float32) {
	f.simd(0x0C)
	for range 4 {
		f.code.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
	}
}

// f32StoreAt stores at the address on the stack plus offset.
func (f *fn) f32StoreAt(offset uint32) { f.op(0x38, 2); f.uleb(offset) }

func float32Inf(sign int) float32 { return float32(math.Inf(sign)) }

// Double-precision lanes, for the sigmoid that follows Go's float64
// math.Exp.
func (f *fn) shuffle(lanes [16]byte) { f.simd(0x0D); f.code.Write(lanes[:]) }
func (f *fn) f32x4Demote()           { f.simd(0x5E) } // f32x4.demote_f64x2_zero
func (f *fn) f64x2Promote()          { f.simd(0x5F) } // f64x2.promote_low_f32x4
func (f *fn) f64x2Abs()              { f.simd(0xEC) }
func (f *fn) f64x2Neg()              { f.simd(0xED) }
func (f *fn) f64x2Add()              { f.simd(0xF0) }
func (f *fn) f64x2Sub()              { f.simd(0xF1) }
func (f *fn) f64x2Mul()              { f.simd(0xF2) }
func (f *fn) f64x2Div()              { f.simd(0xF3) }
func (f *fn) f64x2Pmin()             { f.simd(0xF6) }
func (f *fn) f64x2Pmax()             { f.simd(0xF7) }
func (f *fn) f64x2Lt()               { f.simd(0x49) }
func (f *fn) f64x2Trunc()            { f.simd(0x7A) }
func (f *fn) i32x4TruncSatF64()      { f.simd(0xFC) } // i32x4.trunc_sat_f64x2_s_zero
func (f *fn) i64x2ExtendLow()        { f.simd(0xC7) } // i64x2.extend_low_i32x4_s
func (f *fn) i64x2Shl()              { f.simd(0xCB) }
func (f *fn) i64x2Add()              { f.simd(0xCE) }
func (f *fn) bitselect()             { f.simd(0x52) } // a, b, mask -> a where mask, else b

// f64x2Const pushes v in both lanes.
func (f *fn) f64x2Const(v float64) {
	f.simd(0x0C)
	for range 2 {
		f.code.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)))
	}
}

// i64x2Const pushes v in both lanes.
func (f *fn) i64x2Const(v int64) {
	f.simd(0x0C)
	for range 2 {
		f.code.Write(binary.LittleEndian.AppendUint64(nil, uint64(v)))
	}
}

// Scalar float64, for sums core/cpu takes in float64.
func (f *fn) f64PromoteF32() { f.op(0xBB) }
func (f *fn) f32DemoteF64()  { f.op(0xB6) }
func (f *fn) f64Add()        { f.op(0xA0) }
func (f *fn) f64Mul()        { f.op(0xA2) }
func (f *fn) f64c(v float64) {
	f.op(0x44)
	f.code.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)))
}

func (f *fn) f32Sub() { f.op(0x93) }
