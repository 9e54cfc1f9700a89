package wasmstop

import (
	"errors"
	"fmt"
)

// reader decodes the binary format's values from b, remembering the first
// error; every method returns a zero value once one occurred.
type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("unexpected end")

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(errShort)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(errShort)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// leb reads an unsigned or signed LEB128 number of at most bits bits and
// returns its unsigned bits (the callers here only skip signed ones).
func (r *reader) leb(bits int) uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		if shift >= 7*((bits+6)/7) {
			r.fail(fmt.Errorf("LEB128 number longer than %d bits", bits))
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.leb(32)) }

// name reads a length-prefixed UTF-8 name.
func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

// valType reads a value type: one byte, or a heap type index for the
// typed references of newer proposals.
func (r *reader) valType() {
	switch c := r.byte(); c {
	case 0x63, 0x64: // (ref null ht), (ref ht)
		r.leb(33)
	}
}

// limits reads a table's or memory's limits.
func (r *reader) limits() {
	flags := r.byte()
	bits := 32
	if flags&0x04 != 0 { // memory64
		bits = 64
	}
	r.leb(bits)
	if flags&0x01 != 0 {
		r.leb(bits)
	}
}

// blockType reads the type of a block, loop or if: empty, a value type
// or a type index.
func (r *reader) blockType() {
	if r.err != nil || r.off >= len(r.b) {
		r.fail(errShort)
		return
	}
	switch c := r.b[r.off]; {
	case c == blockEmpty, c >= 0x6f && c <= 0x7f:
		r.off++
	default:
		r.leb(33)
	}
}

// memArg reads a load's or store's alignment and offset (and memory
// index, when the alignment's bit 6 says one follows).
func (r *reader) memArg() {
	align := r.u32()
	if align&0x40 != 0 {
		r.u32()
	}
	r.leb(64)
}

// immediates skips the immediates of the instruction op, whose opcode byte
// was read: the instructions of WebAssembly 2.0 (with SIMD), tail calls
// and threads. Others (exceptions, GC) are an error.
func (r *reader) immediates(op byte) {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == opEnd, op == 0x0f,
		op == 0x1a, op == 0x1b, op == 0xd1, op >= 0x45 && op <= 0xc4:
		// no immediates
	case op == 0x02, op == opLoop, op == opIf:
		r.blockType()
	case op == 0x0c, op == 0x0d, op == 0x10, op == 0x12, op == 0xd2,
		op >= 0x20 && op <= 0x26:
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.valType()
		}
	case op >= 0x28 && op <= 0x3e:
		r.memArg()
	case op == 0x3f, op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.leb(32)
	case op == 0x42:
		r.leb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.valType()
	case op == 0xfc:
		r.miscImmediates()
	case op == 0xfd:
		r.simdImmediates()
	case op == 0xfe:
		r.atomicImmediates()
	default:
		r.fail(fmt.Errorf("unsupported opcode %#02x", op))
	}
}

// miscImmediates skips the immediates of a 0xfc instruction: saturating
// conversions, bulk memory and table operations.
func (r *reader) miscImmediates() {
	switch sub := r.u32(); {
	case sub <= 7:
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	default:
		r.fail(fmt.Errorf("unsupported opcode 0xfc %d", sub))
	}
}

// simdImmediates skips the immediates of a 0xfd (SIMD) instruction.
func (r *reader) simdImmediates() {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load_zero
		r.memArg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		r.memArg()
		r.byte()
	case sub <= 275:
	default:
		r.fail(fmt.Errorf("unsupported opcode 0xfd %d", sub))
	}
}

// atomicImmediates skips the immediates of a 0xfe (threads) instruction.
func (r *reader) atomicImmediates() {
	switch sub := r.u32(); {
	case sub == 3: // atomic.fence
		r.byte()
	case sub <= 2, sub >= 0x10 && sub <= 0x4e:
		r.memArg()
	default:
		r.fail(fmt.Errorf("unsupported opcode 0xfe %d", sub))
	}
}
