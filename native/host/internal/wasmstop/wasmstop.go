// Package wasmstop makes a WebAssembly module stoppable from outside at a
// cost of a few instructions a loop iteration.
//
// Instrument adds a mutable i32 global, exported as Global, and at the top
// of every loop (where each iteration starts) the check
//
//	global.get $stop
//	if
//	  unreachable
//	end
//
// A host that sets the global to a non-zero value from another goroutine
// makes the running guest trap at its next loop iteration; code without a
// loop runs to an end in bounded time, so no other point needs a check.
// This is the guarantee wazero's WithCloseOnContextDone gives, which checks
// at the same places but leaves compiled code for a call into the Go
// runtime at each of them: Go's WebAssembly output puts a loop in every
// function, and a plugin's own code ran several times slower for it.
//
// The module's other globals, functions and sections keep their indices
// and bytes; only the global, export and code sections change.
package wasmstop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Global is the export name of the stop flag.
const Global = "graft_stop"

// Section ids, and the order in which the specification places them.
const (
	secCustom   = 0
	secImport   = 2
	secGlobal   = 6
	secExport   = 7
	secCode     = 10
	secDataCnt  = 12
	secTag      = 13
	importGlob  = 0x03
	exportGlob  = 0x03
	opLoop      = 0x03
	opGlobalGet = 0x23
	opIf        = 0x04
	opEnd       = 0x0b
	opUnreach   = 0x00
	blockEmpty  = 0x40
	typeI32     = 0x7f
	opI32Const  = 0x41
)

// sectionRank orders the known sections as the binary format requires.
func sectionRank(id byte) int {
	switch id {
	case secTag:
		return 55 // after memory (5), before global (6)
	case secDataCnt:
		return 95 // after element (9), before code (10)
	default:
		return 10 * int(id)
	}
}

// section is one section of a module: its id and contents.
type section struct {
	id   byte
	body []byte
}

// Instrument returns a copy of the module wasm with the stop flag and its
// checks, or an error naming what it could not read.
func Instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, errors.New("wasmstop: not a WebAssembly module (no \\0asm header)")
	}
	if v := binary.LittleEndian.Uint32(wasm[4:8]); v != 1 {
		return nil, fmt.Errorf("wasmstop: binary format version %d, want 1", v)
	}
	var secs []section
	r := reader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("wasmstop: section %d at byte %d: %w", id, r.off, r.err)
		}
		secs = append(secs, section{id, body})
	}
	importedGlobals, err := countImportedGlobals(secs)
	if err != nil {
		return nil, err
	}
	// The flag is appended after the module's own globals, so no existing
	// index changes.
	stop := importedGlobals
	var haveGlobal, haveExport bool
	for i := range secs {
		s := &secs[i]
		var err error
		switch s.id {
		case secGlobal:
			haveGlobal = true
			var own uint32
			s.body, own, err = addGlobal(s.body)
			stop += own
		case secExport:
			haveExport = true
		}
		if err != nil {
			return nil, err
		}
	}
	if !haveGlobal {
		secs = insertSection(secs, section{secGlobal, newGlobalSection()})
	}
	if !haveExport {
		secs = insertSection(secs, section{secExport, []byte{0}})
	}
	for i := range secs {
		s := &secs[i]
		var err error
		switch s.id {
		case secExport:
			s.body, err = addExport(s.body, stop)
		case secCode:
			s.body, err = instrumentCode(s.body, stop)
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, len(wasm)+len(wasm)/8)
	out = append(out, wasm[:8]...)
	for _, s := range secs {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out, nil
}

// insertSection places s before the first known section that follows it.
func insertSection(secs []section, s section) []section {
	at := len(secs)
	for i, o := range secs {
		if o.id != secCustom && sectionRank(o.id) > sectionRank(s.id) {
			at = i
			break
		}
	}
	return slices.Insert(secs, at, s)
}

// countImportedGlobals counts the globals the import section brings in,
// which come first in the global index space.
func countImportedGlobals(secs []section) (uint32, error) {
	for _, s := range secs {
		if s.id != secImport {
			continue
		}
		r := reader{b: s.body}
		n := r.u32()
		globals := uint32(0)
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.name() // module
			r.name() // field
			switch kind := r.byte(); kind {
			case 0x00: // function: type index
				r.u32()
			case 0x01: // table: reference type, limits
				r.valType()
				r.limits()
			case 0x02: // memory: limits
				r.limits()
			case importGlob: // global: value type, mutability
				r.valType()
				r.byte()
				globals++
			case 0x04: // tag: attribute, type index
				r.byte()
				r.u32()
			default:
				r.fail(fmt.Errorf("import %d has unknown kind %#x", i, kind))
			}
		}
		if r.err != nil {
			return 0, fmt.Errorf("wasmstop: import section: %w", r.err)
		}
		return globals, nil
	}
	return 0, nil
}

// stopGlobal is the flag's entry in the global section: a mutable i32
// that starts at 0.
var stopGlobal = []byte{typeI32, 0x01, opI32Const, 0x00, opEnd}

// addGlobal appends the flag to a global section, returning the section
// and how many globals it defined before.
func addGlobal(body []byte) ([]byte, uint32, error) {
	r := reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, 0, fmt.Errorf("wasmstop: global section: %w", r.err)
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, body[r.off:]...)
	return append(out, stopGlobal...), n, nil
}

func newGlobalSection() []byte { return append([]byte{1}, stopGlobal...) }

// addExport appends the flag's export to an export section, refusing a
// module that already exports the name.
func addExport(body []byte, global uint32) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	entries := r.off
	for i := uint32(0); i < n && r.err == nil; i++ {
		if name := r.name(); name == Global {
			return nil, fmt.Errorf("wasmstop: the module already exports %q", Global)
		}
		r.byte()
		r.u32()
	}
	if r.err != nil {
		return nil, fmt.Errorf("wasmstop: export section: %w", r.err)
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, body[entries:]...)
	out = binary.AppendUvarint(out, uint64(len(Global)))
	out = append(out, Global...)
	out = append(out, exportGlob)
	return binary.AppendUvarint(out, uint64(global)), nil
}

// instrumentCode adds the check after every loop instruction of every
// function body in a code section.
func instrumentCode(body []byte, global uint32) ([]byte, error) {
	check := []byte{opGlobalGet}
	check = binary.AppendUvarint(check, uint64(global))
	check = append(check, opIf, blockEmpty, opUnreach, opEnd)

	r := reader{b: body}
	n := r.u32()
	out := make([]byte, 0, len(body)+len(body)/8)
	out = binary.AppendUvarint(out, uint64(n))
	var fn []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("wasmstop: code section, function body %d: %w", i, r.err)
		}
		var err error
		if fn, err = instrumentBody(fn[:0], code, check); err != nil {
			return nil, fmt.Errorf("wasmstop: function body %d: %w", i, err)
		}
		out = binary.AppendUvarint(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if !r.done() {
		return nil, fmt.Errorf("wasmstop: code section: %d bytes after the last body", len(body)-r.off)
	}
	return out, nil
}

// instrumentBody appends to out the function body code with check after
// each loop's block type.
func instrumentBody(out, code, check []byte) ([]byte, error) {
	r := reader{b: code}
	groups := r.u32()
	for i := uint32(0); i < groups && r.err == nil; i++ {
		r.u32()     // count
		r.valType() // type
	}
	copied := 0 // the locals go out with the first instructions
	for r.err == nil && !r.done() {
		op := r.byte()
		if op == opLoop {
			r.blockType()
			out = append(out, code[copied:r.off]...)
			out = append(out, check...)
			copied = r.off
			continue
		}
		r.immediates(op)
	}
	if r.err != nil {
		return nil, fmt.Errorf("at byte %d: %w", r.off, r.err)
	}
	return append(out, code[copied:]...), nil
}
