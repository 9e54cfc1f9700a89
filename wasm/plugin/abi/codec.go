package abi

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Encode marshals v as msgpack.
func Encode(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("msgpack encode %T: %w", v, err)
	}
	return b, nil
}

// Decode unmarshals exactly one msgpack value from data into v. Unknown
// map keys are ignored (newer peers may add optional fields); bytes after
// the value are an error, so a truncated or concatenated message never
// passes for a valid one.
func Decode(data []byte, v any) error {
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("msgpack decode %T: %w", v, err)
	}
	if r.Len() > 0 {
		return fmt.Errorf("msgpack decode %T: %d bytes after the value", v, r.Len())
	}
	return nil
}
