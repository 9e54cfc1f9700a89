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
	n := 0
	for _, set := range []bool{r.Code != "", r.Error != "", len(r.Result) > 0} {
		if set {
			n++
		}
	}
	b = append(b, 0x80|byte(n))
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

// readString reads a msgpack string at data[i:], returning it and the
// index after it; ok is false for anything else.
func readString(data []byte, i int) (s string, next int, ok bool) {
	if i >= len(data) {
		return "", 0, false
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
		return "", 0, false
	}
	if n < 0 || n > len(data)-i {
		return "", 0, false
	}
	return string(data[i : i+n]), i + n, true
}

// readStringMap reads data as exactly one fixed map whose keys are among
// keys and whose values are strings, calling set for each; ok is false
// (and data is for the reflective decoder) otherwise.
func readStringMap(data []byte, set func(key, value string) bool) bool {
	if len(data) == 0 || data[0]&0xf0 != 0x80 {
		return false
	}
	i := 1
	for range int(data[0] & 0x0f) {
		k, next, ok := readString(data, i)
		if !ok {
			return false
		}
		v, next, ok := readString(data, next)
		if !ok || !set(k, v) {
			return false
		}
		i = next
	}
	return i == len(data)
}

// decodeRequest is Decode for a request of an op alone.
func decodeRequest(data []byte, r *Request) bool {
	var op *string
	if !readStringMap(data, func(k, v string) bool {
		if k != "op" {
			return false
		}
		op = &v
		return true
	}) {
		return false
	}
	// As the reflective decoder, set what the message holds and leave the
	// rest.
	if op != nil {
		r.Op = *op
	}
	return true
}

// decodeResponse is Decode for a response without a result.
func decodeResponse(data []byte, r *Response) bool {
	var code, msg *string
	if !readStringMap(data, func(k, v string) bool {
		switch k {
		case "code":
			code = &v
		case "error":
			msg = &v
		default:
			return false
		}
		return true
	}) {
		return false
	}
	if code != nil {
		r.Code = *code
	}
	if msg != nil {
		r.Error = *msg
	}
	return true
}
