package abi

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// reflective encodes and decodes as Encode and Decode did before their
// fast paths, through msgpack's reflection.
func reflectiveEncode(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag(fallbackTag)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reflectiveDecode(data []byte, v any) error {
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetCustomStructTag(fallbackTag)
	return dec.Decode(v)
}

// TestEnvelopeBytes: requests and responses encode to the bytes msgpack's
// reflective encoder writes, and decode back, for every string length
// class.
func TestEnvelopeBytes(t *testing.T) {
	args := reflectiveEncode(t, map[string]int{"a": 1})
	var strs []string
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		strs = append(strs, strings.Repeat("x", n))
	}
	for _, s := range strs {
		for _, raw := range []RawMessageish{nil, args} {
			for _, m := range []any{
				&Request{Op: s, Args: raw},
				&Response{Code: s, Error: s, Result: raw},
				&Response{Error: s},
				&Response{Code: s},
			} {
				got, err := Encode(m)
				if err != nil {
					t.Fatal(err)
				}
				if want := reflectiveEncode(t, m); !bytes.Equal(got, want) {
					t.Fatalf("%T with %d-byte strings: % x, want % x", m, len(s), got[:min(len(got), 16)], want[:min(len(want), 16)])
				}
				back := reflect.New(reflect.TypeOf(m).Elem()).Interface()
				if err := Decode(got, back); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(back, m) && !(len(raw) == 0 && emptyEqual(back, m)) {
					t.Fatalf("%T round trip: %+v, want %+v", m, back, m)
				}
			}
		}
	}
}

// RawMessageish is the type of Args and Result.
type RawMessageish = msgpack.RawMessage

// emptyEqual compares messages whose raw field is empty, nil or not.
func emptyEqual(a, b any) bool {
	switch x := a.(type) {
	case *Request:
		y := b.(*Request)
		return x.Op == y.Op && len(x.Args) == 0 && len(y.Args) == 0
	case *Response:
		y := b.(*Response)
		return x.Code == y.Code && x.Error == y.Error && len(x.Result) == 0 && len(y.Result) == 0
	}
	return false
}

// FuzzEnvelopeDecode: Decode of any bytes into a Request or a Response
// agrees with the reflective decoder: the same error or none, and the same
// message.
func FuzzEnvelopeDecode(f *testing.F) {
	for _, m := range []any{&Request{Op: "ping"}, &Request{Op: "eval", Args: []byte{0xc0}}, &Response{Code: "failed", Error: "x"}, &Response{}} {
		b, _ := Encode(m)
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa2, 'o', 'p', 0xc0})
	f.Add([]byte{0x82, 0xa2, 'o', 'p', 0xa1, 'x', 0xa2, 'o', 'p', 0xa1, 'y'})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range []func() any{func() any { return new(Request) }, func() any { return new(Response) }} {
			got, want := mk(), mk()
			gotErr := Decode(data, got)
			wantErr := reflectiveDecode(data, want)
			// Decode also refuses bytes after the value, so it may fail
			// where the reflective decoder alone does not; never the
			// other way round, and where both succeed they agree.
			if wantErr != nil && gotErr == nil {
				t.Fatalf("% x: Decode accepted what the reflective decoder refuses (%v)", data, wantErr)
			}
			if gotErr == nil && !reflect.DeepEqual(got, want) && !emptyEqual(got, want) {
				t.Fatalf("% x: Decode %+v, reflective %+v", data, got, want)
			}
		}
	})
}
