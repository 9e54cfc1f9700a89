package bundle

import (
	"bytes"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// reader walks a bundle with msgpack's decoder, checking each value's type
// before decoding it and each claimed length against the bytes that are
// really left, so that a corrupt bundle can never make it allocate more
// than the bundle's own size.
type reader struct {
	data []byte
	r    *bytes.Reader
	dec  *msgpack.Decoder
}

func (rd *reader) pos() int { return len(rd.data) - rd.r.Len() }

// peek returns the type code of the next value.
func (rd *reader) peek(what string) (byte, error) {
	c, err := rd.dec.PeekCode()
	if err == io.EOF {
		return 0, fmt.Errorf("%s: truncated at byte %d", what, rd.pos())
	}
	return c, err
}

func (rd *reader) mapLen(what string, limit int) (int, error) {
	c, err := rd.peek(what)
	if err != nil {
		return 0, err
	}
	if !isMap(c) {
		return 0, fmt.Errorf("%s is %s, want a map", what, describe(c))
	}
	n, err := rd.dec.DecodeMapLen()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	// Every entry takes at least two bytes.
	if n > limit || 2*n > rd.r.Len() {
		return 0, fmt.Errorf("%s claims %d entries (limit %d, %d bytes left)", what, n, limit, rd.r.Len())
	}
	return n, nil
}

func (rd *reader) str(what string) (string, error) {
	c, err := rd.peek(what)
	if err != nil {
		return "", err
	}
	if !isStr(c) {
		return "", fmt.Errorf("%s is %s, want a string", what, describe(c))
	}
	b, err := rd.blob(what)
	return string(b), err
}

func (rd *reader) bin(what string) ([]byte, error) {
	c, err := rd.peek(what)
	if err != nil {
		return nil, err
	}
	if !isBin(c) {
		return nil, fmt.Errorf("%s is %s, want bin (bytes)", what, describe(c))
	}
	return rd.blob(what)
}

// blob reads a str or bin value as a slice of data, without copying.
func (rd *reader) blob(what string) ([]byte, error) {
	n, err := rd.dec.DecodeBytesLen()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, truncated(err))
	}
	if n < 0 || n > rd.r.Len() {
		return nil, fmt.Errorf("%s claims %d bytes but only %d remain", what, n, rd.r.Len())
	}
	start := rd.pos()
	if _, err := rd.r.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return rd.data[start : start+n : start+n], nil
}

func (rd *reader) integer(what string) (int64, error) {
	c, err := rd.peek(what)
	if err != nil {
		return 0, err
	}
	if !isInt(c) {
		return 0, fmt.Errorf("%s is %s, want an integer", what, describe(c))
	}
	v, err := rd.dec.DecodeInt64()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, truncated(err))
	}
	return v, nil
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("truncated")
	}
	return err
}

// describe names the type of a msgpack value by its first byte.
func describe(c byte) string {
	switch {
	case isMap(c):
		return "a map"
	case isStr(c):
		return "a string"
	case isBin(c):
		return "bin (bytes)"
	case isInt(c):
		return "an integer"
	}
	switch c {
	case 0xc0:
		return "nil"
	case 0xc2, 0xc3:
		return "a boolean"
	case 0xca, 0xcb:
		return "a float"
	case 0xdc, 0xdd:
		return "an array"
	}
	if c&0xf0 == 0x90 {
		return "an array"
	}
	return fmt.Sprintf("msgpack type 0x%02x", c)
}

func decode(data []byte) (map[string][]byte, error) {
	if int64(len(data)) > MaxSize {
		return nil, fmt.Errorf("%d bytes exceed the %d-byte limit", len(data), MaxSize)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("empty file")
	}
	br := bytes.NewReader(data)
	rd := &reader{data: data, r: br, dec: msgpack.NewDecoder(br)}
	n, err := rd.mapLen("the top level", 16)
	if err != nil {
		return nil, fmt.Errorf("%w (not a graft adapter bundle?)", err)
	}
	var (
		format  string
		version int64
		files   map[string][]byte
		seen    = map[string]bool{}
	)
	for range n {
		key, err := rd.str("a top-level key")
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "format":
			if format, err = rd.str(`"format"`); err != nil {
				return nil, err
			}
			if format != FormatName {
				return nil, fmt.Errorf("format %q is not %q", format, FormatName)
			}
		case "version":
			if version, err = rd.integer(`"version"`); err != nil {
				return nil, err
			}
			if version != Version {
				return nil, fmt.Errorf("version %d is not supported (this graft reads version %d)", version, Version)
			}
		case "files":
			if files, err = rd.files(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown key %q (a newer bundle format?)", key)
		}
	}
	switch {
	case !seen["format"]:
		return nil, fmt.Errorf(`key "format" is missing (not a graft adapter bundle?)`)
	case !seen["version"]:
		return nil, fmt.Errorf(`key "version" is missing`)
	case !seen["files"]:
		return nil, fmt.Errorf(`key "files" is missing`)
	case len(files) == 0:
		return nil, fmt.Errorf("holds no files")
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%d unexpected bytes after the bundle", br.Len())
	}
	return files, nil
}

func (rd *reader) files() (map[string][]byte, error) {
	n, err := rd.mapLen(`"files"`, MaxFiles)
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte, n)
	for i := range n {
		name, err := rd.str(fmt.Sprintf("file name %d", i))
		if err != nil {
			return nil, err
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("file %q appears twice", name)
		}
		if files[name], err = rd.bin(fmt.Sprintf("file %q", name)); err != nil {
			return nil, err
		}
	}
	return files, nil
}
