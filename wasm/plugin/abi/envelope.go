package abi

import (
	"encoding/binary"
	"math"
)

// Every call carries a Request and a Response, so their msgpack is written
// and, when they hold only strings, read here without reflection: under
// wasm, msgpack's reflective codec costs tens of microseconds a call, the
// bulk of an empty call's overhead. The bytes are those the reflective
// encoder writes (tested), and a message with anything else (arguments,
// a result, an unknown key, another string encoding) goes to it.

// appendRequest appends r's msgpack: a map of op and, when present, args.
func appendRequest(b []byte, r *Request) []byte {
	n := 1
	if len(r.Args) > 0 {
		n++
	}
	b = append(b, 0x80|byte(n))
	b = appendString(appendString(b, "op"), r.Op)
	if len(r.Args) > 0 {
		b = append(appendString(b, "args"), r.Args...)
	}
	return b
}

// appendResponse appends r's msgpack: a map of its non-empty fields.
func appendResponse(b []byte, r *Response) []byte {
	// Counted without a loop: under exact deadlines every loop iteration
	// in the guest is a check that leaves the guest's code.
	n := byte(0)
	if r.Code != "" {
		n++
	}
	if r.Error != "" {
		n++
	}
	if len(r.Result) > 0 {
		n++
	}
	b = append(b, 0x80|n)
	if r.Code != "" {
		b = appendString(appendString(b, "code"), r.Code)
	}
	if r.Error != "" {
		b = appendString(appendString(b, "error"), r.Error)
	}
	if len(r.Result) > 0 {
		b = append(appendString(b, "result"), r.Result...)
	}
	return b
}

// appendString appends s as the shortest msgpack string, as msgpack's
// encoder does.
func appendString(b []byte, s string) []byte {
	switch l := len(s); {
	case l < 32:
		b = append(b, 0xa0|byte(l))
	case l < 256:
		b = append(b, 0xd9, byte(l))
	case l <= math.MaxUint16:
		b = append(b, 0xda, byte(l>>8), byte(l))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(l))
	}
	return append(b, s...)
}

// readString reads a msgpack string at data[i:], returning its bytes and
// the index after it; ok is false for anything else.
func readString(data []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(data) {
		return nil, 0, false
	}
	c, n := data[i], 0
	i++
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9 && i+1 <= len(data):
		n, i = int(data[i]), i+1
	case c == 0xda && i+2 <= len(data):
		n, i = int(binary.BigEndian.Uint16(data[i:])), i+2
	case c == 0xdb && i+4 <= len(data):
		n, i = int(binary.BigEndian.Uint32(data[i:])), i+4
	default:
		return nil, 0, false
	}
	if n < 0 || n > len(data)-i {
		return nil, 0, false
	}
	return data[i : i+n], i + n, true
}

// readStringMap reads data as exactly one fixed map whose keys are among
// keys and whose values are strings, storing each value in the field of
// fields its key names (the strings are copied); ok is false (and data is
// for the reflective decoder) otherwise. Allocation is slow in a wasm
// guest, so nothing but the values is allocated.
func readStringMap(data []byte, keys []string, fields []*string) bool {
	if len(data) == 0 || data[0]&0xf0 != 0x80 {
		return false
	}
	var vals [3][]byte
	var seen [3]bool
	i := 1
	for range int(data[0] & 0x0f) {
		k, next, ok := readString(data, i)
		if !ok {
			return false
		}
		v, next, ok := readString(data, next)
		if !ok {
			return false
		}
		j := 0
		for j < len(keys) && string(k) != keys[j] {
			j++
		}
		if j == len(keys) {
			return false
		}
		vals[j], seen[j] = v, true
		i = next
	}
	if i != len(data) {
		return false
	}
	// As the reflective decoder, set what the message holds and leave the
	// rest.
	for j, f := range fields {
		if seen[j] {
			*f = string(vals[j])
		}
	}
	return true
}

// decodeRequest is Decode for a request of an op alone. An op this
// package names takes its constant rather than a copy, sparing a guest
// call an allocation.
func decodeRequest(data []byte, r *Request) bool {
	if op, ok := knownOp(data); ok {
		r.Op = op
		return true
	}
	return readStringMap(data, []string{"op"}, []*string{&r.Op})
}

// knownOp reads data as exactly {"op": one of the Op constants}, the
// request of an op without arguments as appendRequest writes it.
func knownOp(data []byte) (string, bool) {
	const head = "\x81\xa2op" // a map of one entry, the key "op"
	if len(data) < len(head)+1 || string(data[:len(head)]) != head {
		return "", false
	}
	v, next, ok := readString(data, len(head))
	if !ok || next != len(data) {
		return "", false
	}
	// A switch on string(v) compares without converting.
	switch string(v) {
	case OpPing:
		return OpPing, true
	case OpInfo:
		return OpInfo, true
	case OpLoadModel:
		return OpLoadModel, true
	case OpLoadAdapter:
		return OpLoadAdapter, true
	case OpUnloadAdapter:
		return OpUnloadAdapter, true
	case OpGenerate:
		return OpGenerate, true
	case OpEval:
		return OpEval, true
	case OpTrain:
		return OpTrain, true
	case OpExportAdapter:
		return OpExportAdapter, true
	}
	return "", false
}

// DecodeRequest is Decode for a *Request. Called with its concrete type it
// keeps r off the heap, one allocation less in every guest call.
func DecodeRequest(data []byte, r *Request) error {
	if decodeRequest(data, r) {
		return nil
	}
	// Only this copy escapes to the reflective decoder, so the fast path
	// leaves the caller's Request on its stack.
	v := *r
	err := decodeReflective(data, &v)
	*r = v
	return err
}

// AppendResponse appends r's msgpack to b, as Encode writes it; a guest
// that passes a buffer it reuses allocates nothing for the envelope.
func AppendResponse(b []byte, r *Response) []byte { return appendResponse(b, r) }

// decodeResponse is Decode for a response without a result.
func decodeResponse(data []byte, r *Response) bool {
	return readStringMap(data, []string{"code", "error"}, []*string{&r.Code, &r.Error})
}
