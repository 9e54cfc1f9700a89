package abi

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// fallbackTag names a field that has no msgpack tag: types from graft's
// core that messages carry (train.Spec and its records) are keyed as in
// their JSON form, the names of graft train --config run.json.
const fallbackTag = "json"

// Encode marshals v as msgpack.
func Encode(v any) ([]byte, error) {
	switch m := v.(type) {
	case *Request:
		return appendRequest(make([]byte, 0, 8+len(m.Op)+len(m.Args)), m), nil
	case *Response:
		return appendResponse(make([]byte, 0, 16+len(m.Code)+len(m.Error)+len(m.Result)), m), nil
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag(fallbackTag)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("msgpack encode %T: %w", v, err)
	}
	return buf.Bytes(), nil
}

// Decode unmarshals exactly one msgpack value from data into v. Unknown
// map keys are ignored (newer peers may add optional fields); bytes after
// the value are an error, so a truncated or concatenated message never
// passes for a valid one.
func Decode(data []byte, v any) error {
	switch m := v.(type) {
	case *Request:
		if decodeRequest(data, m) {
			return nil
		}
	case *Response:
		if decodeResponse(data, m) {
			return nil
		}
	}
	return decodeReflective(data, v)
}

// decodeReflective is Decode through msgpack's reflection.
func decodeReflective(data []byte, v any) error {
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	dec.SetCustomStructTag(fallbackTag)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("msgpack decode %T: %w", v, err)
	}
	if r.Len() > 0 {
		return fmt.Errorf("msgpack decode %T: %d bytes after the value", v, r.Len())
	}
	return nil
}
