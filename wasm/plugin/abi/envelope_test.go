package abi

import (
	"bytes"
	"errors"
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

// TestKnownOps: a request of a known op alone decodes without copying the
// op to the op's constant; anything around it (another key, trailing
// bytes, an unknown op, args) decodes as msgpack's reflection does.
func TestKnownOps(t *testing.T) {
	ops := []string{OpPing, OpInfo, OpLoadModel, OpLoadAdapter, OpUnloadAdapter, OpGenerate, OpEval, OpTrain, OpExportAdapter}
	for _, op := range ops {
		b, _ := Encode(&Request{Op: op})
		if got, ok := knownOp(b); !ok || got != op {
			t.Errorf("knownOp(%q) = %q, %v", op, got, ok)
		}
		var r Request
		if err := DecodeRequest(b, &r); err != nil || r.Op != op || r.Args != nil {
			t.Errorf("DecodeRequest(%q) = %+v, %v", op, r, err)
		}
	}
	args := reflectiveEncode(t, map[string]int{"a": 1})
	for _, data := range [][]byte{
		reflectiveEncode(t, &Request{Op: "teleport"}),
		reflectiveEncode(t, &Request{Op: OpGenerate, Args: args}),
		reflectiveEncode(t, map[string]string{"op": OpPing, "x": "y"}),
		append(reflectiveEncode(t, &Request{Op: OpPing}), 0xc0),
		reflectiveEncode(t, &Request{Op: OpPing})[:6],
		{0x81, 0xa2, 'o', 'p', 0xd9, 4, 'p', 'i', 'n', 'g'}, // a longer string encoding
	} {
		var got, want Request
		gotErr := DecodeRequest(data, &got)
		r := bytes.NewReader(data)
		dec := msgpack.NewDecoder(r)
		dec.SetCustomStructTag(fallbackTag)
		wantErr := dec.Decode(&want)
		if wantErr == nil && r.Len() > 0 {
			wantErr = errors.New("trailing bytes")
		}
		if (gotErr == nil) != (wantErr == nil) || gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeRequest(% x) = %+v, %v; msgpack: %+v, %v", data, got, gotErr, want, wantErr)
		}
	}
}

// TestAppendResponse: AppendResponse writes Encode's bytes after what the
// buffer holds.
func TestAppendResponse(t *testing.T) {
	for _, r := range []*Response{{}, {Code: CodeFailed, Error: "e"}, {Result: reflectiveEncode(t, 1)}} {
		want, _ := Encode(r)
		got := AppendResponse([]byte{1, 2}, r)
		if !bytes.Equal(got[:2], []byte{1, 2}) || !bytes.Equal(got[2:], want) {
			t.Errorf("AppendResponse(%+v) = % x, want 01 02 % x", r, got, want)
		}
	}
}
