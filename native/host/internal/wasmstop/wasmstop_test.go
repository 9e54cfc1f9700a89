package wasmstop

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// module assembles a module from sections (id, body).
func module(secs ...section) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}

// vec prefixes items with their count.
func vec(items ...[]byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func name(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }

// body is a function body with no locals but those given as (count, type) pairs.
func body(locals []byte, code ...byte) []byte {
	b := append(append([]byte{}, locals...), code...)
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// testModule has an existing global (so the flag is global 1), a function
// that spins forever, one that counts to its argument in a loop nested in
// a block (with an f64.const, a br_table and a memory access among its
// instructions, to exercise the decoder), and exports both.
func testModule() []byte {
	types := vec(
		[]byte{0x60, 0, 0},             // () -> ()
		[]byte{0x60, 1, 0x7f, 1, 0x7f}, // (i32) -> i32
	)
	funcs := vec([]byte{0}, []byte{1})
	mem := vec([]byte{0x00, 1})                          // memory, min 1 page
	globals := vec([]byte{0x7f, 0x01, 0x41, 0x2a, 0x0b}) // mutable i32 = 42
	exports := vec(
		append(name("spin"), 0x00, 0),
		append(name("count"), 0x00, 1),
		append(name("answer"), 0x03, 0),
	)
	spin := body([]byte{0}, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)
	count := body([]byte{1, 1, 0x7f}, // one i32 local: i
		0x02, 0x40, // block
		0x03, 0x40, // loop
		0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, // i = i + 1
		0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x1a, // f64.const 1; drop
		0x41, 0x00, 0x20, 0x01, 0x36, 0x02, 0x00, // mem[0] = i
		0x20, 0x01, 0x20, 0x00, 0x4e, 0x0d, 0x01, // br_if 1 (i >= n)
		0x41, 0x00, 0x0e, 0x01, 0x00, 0x00, // br_table [0] 0: back to the loop
		0x0b,                         // end loop
		0x0b,                         // end block
		0x41, 0x00, 0x28, 0x02, 0x00, // mem[0]
		0x0b)
	return module(
		section{1, types}, section{3, funcs}, section{5, mem}, section{6, globals},
		section{7, exports}, section{10, vec(spin, count)},
		section{0, append(name("note"), "custom"...)},
	)
}

func TestInstrumentStopsALoop(t *testing.T) {
	ctx := context.Background()
	wasm, err := Instrument(testModule())
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	// The module's code and its own global are as before.
	res, err := mod.ExportedFunction("count").Call(ctx, 1000)
	if err != nil || res[0] != 1000 {
		t.Fatalf("count(1000) = %v, %v", res, err)
	}
	if g := mod.ExportedGlobal("answer").Get(); g != 42 {
		t.Fatalf("the module's global is %d, want 42", g)
	}
	stop, ok := mod.ExportedGlobal(Global).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable global %q", Global)
	}
	if stop.Get() != 0 {
		t.Fatalf("the flag starts at %d", stop.Get())
	}
	time.AfterFunc(20*time.Millisecond, func() { stop.Set(1) })
	start := time.Now()
	_, err = mod.ExportedFunction("spin").Call(ctx)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("spin returned %v, want the unreachable trap", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("spin stopped after %v", d)
	}
	// The counting loop traps at its first iteration while the flag is up.
	if _, err := mod.ExportedFunction("count").Call(ctx, 5); err == nil {
		t.Fatal("count ran with the flag set")
	}
}

func TestInstrumentAddsOneCheckPerLoop(t *testing.T) {
	in := testModule()
	out, err := Instrument(in)
	if err != nil {
		t.Fatal(err)
	}
	check := []byte{0x03, 0x40, 0x23, 0x01, 0x04, 0x40, 0x00, 0x0b}
	if n := bytes.Count(out, check); n != 2 {
		t.Fatalf("%d loops carry the check, want 2", n)
	}
	// Instrumenting twice is refused: the name is taken.
	if _, err := Instrument(out); err == nil || !strings.Contains(err.Error(), Global) {
		t.Fatalf("second Instrument: %v", err)
	}
}

func TestInstrumentCountsImportedGlobals(t *testing.T) {
	imports := vec(
		append(append(name("env"), name("g")...), 0x03, 0x7f, 0x00),
		append(append(name("env"), name("f")...), 0x00, 0x00),
		append(append(name("env"), name("m")...), 0x02, 0x01, 0x01, 0x02),
	)
	m := module(
		section{1, vec([]byte{0x60, 0, 0})},
		section{2, imports},
		section{3, vec([]byte{0})},
		section{10, vec(body([]byte{0}, 0x03, 0x40, 0x0b, 0x0b))},
	)
	out, err := Instrument(m)
	if err != nil {
		t.Fatal(err)
	}
	// No global or export section before: both are added, in order,
	// and the flag is global 1, after the imported one.
	wantGlobal := []byte{secGlobal, 6, 1, 0x7f, 0x01, 0x41, 0x00, 0x0b}
	exports := vec(append(name(Global), 0x03, 0x01))
	wantExport := append([]byte{secExport, byte(len(exports))}, exports...)
	gi, ei, ci := bytes.Index(out, wantGlobal), bytes.Index(out, wantExport), bytes.Index(out, []byte{0x03, 0x40, 0x23, 0x01})
	if gi < 0 || ei < 0 || ci < 0 || !(gi < ei && ei < ci) {
		t.Fatalf("global section at %d, export at %d, check at %d in % x", gi, ei, ci, out)
	}
}

func TestInstrumentRejectsBadModules(t *testing.T) {
	good := testModule()
	cases := []struct {
		name string
		wasm []byte
		want string
	}{
		{"empty", nil, "not a WebAssembly module"},
		{"version", append([]byte("\x00asm\x02\x00\x00\x00"), good[8:]...), "version 2"},
		{"truncated section", good[:len(good)-3], "unexpected end"},
		{"truncated body", module(section{10, []byte{1, 5, 0, 0x03}}), "function body 0"},
		{"unknown opcode", module(section{10, vec(body([]byte{0}, 0x06, 0x0b))}), "unsupported opcode 0x06"},
		{"overlong number", module(section{10, vec(body([]byte{0}, 0x41, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x0b))}), "LEB128"},
		{"bad import", module(section{2, vec(append(append(name("a"), name("b")...), 0x09))}), "unknown kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Instrument(c.wasm)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Instrument: %v, want an error with %q", err, c.want)
			}
		})
	}
}

// FuzzInstrument: any input gives a module or an error, never a panic, and
// a module that wazero accepts stays one it accepts once instrumented.
func FuzzInstrument(f *testing.F) {
	f.Add(testModule())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm)
		if err != nil {
			return
		}
		ctx := context.Background()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
		defer rt.Close(ctx)
		if _, err := rt.CompileModule(ctx, wasm); err != nil {
			return
		}
		if _, err := rt.CompileModule(ctx, out); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("instrumented module invalid: %v", err)
		}
	})
}
