package host

// A tiny WebAssembly encoder for test modules that imitate (or break) the
// plugin's ABI: each export is a function returning a constant.

const (
	wasmI32 = 0x7f
	wasmI64 = 0x7e
)

// testFunc is one exported function: its signature and, for functions
// with a result, the constant it returns.
type testFunc struct {
	name            string
	params, results []byte
	value           int64
}

// uleb appends v in unsigned LEB128.
func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// sleb appends v in signed LEB128.
func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func section(b []byte, id byte, body []byte) []byte {
	b = append(b, id)
	b = uleb(b, uint64(len(body)))
	return append(b, body...)
}

func vec(b []byte, items ...[]byte) []byte {
	b = uleb(b, uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func name(s string) []byte { return append(uleb(nil, uint64(len(s))), s...) }

// testModule encodes a module with one page of memory (exported as
// "memory" when withMemory) and the given functions.
func testModule(withMemory bool, funcs ...testFunc) []byte {
	var types, decls, exports, bodies [][]byte
	for i, f := range funcs {
		sig := append([]byte{0x60}, vec(nil, bytesOf(f.params)...)...)
		types = append(types, append(sig, vec(nil, bytesOf(f.results)...)...))
		decls = append(decls, uleb(nil, uint64(i)))
		exports = append(exports, append(append(name(f.name), 0x00), uleb(nil, uint64(i))...))
		code := []byte{0x00} // no locals
		switch {
		case len(f.results) == 1 && f.results[0] == wasmI32:
			code = sleb(append(code, 0x41), f.value) // i32.const
		case len(f.results) == 1 && f.results[0] == wasmI64:
			code = sleb(append(code, 0x42), f.value) // i64.const
		}
		code = append(code, 0x0b) // end
		bodies = append(bodies, append(uleb(nil, uint64(len(code))), code...))
	}
	if withMemory {
		exports = append(exports, append(name("memory"), 0x02, 0x00))
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = section(m, 1, vec(nil, types...))
	m = section(m, 3, vec(nil, decls...))
	m = section(m, 5, vec(nil, []byte{0x00, 0x01})) // one memory, min 1 page
	m = section(m, 7, vec(nil, exports...))
	return section(m, 10, vec(nil, bodies...))
}

func bytesOf(ts []byte) [][]byte {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		out[i] = []byte{t}
	}
	return out
}

// abiFuncs are the plugin's exports with the right signatures; version is
// what graft_abi_version returns.
func abiFuncs(version int64) []testFunc {
	return []testFunc{
		{name: "_initialize"},
		{name: "graft_abi_version", results: []byte{wasmI32}, value: version},
		{name: "graft_buffer", params: []byte{wasmI32}, results: []byte{wasmI64}},
		{name: "graft_call", params: []byte{wasmI32}, results: []byte{wasmI64}},
		{name: "graft_free"},
	}
}
