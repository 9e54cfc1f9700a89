package bundle

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The values of the "format" and "version" keys this package writes.
const (
	FormatName = "graft-adapter"
	Version    = 1
)

// Limits checked before anything is decoded or written.
const (
	// MaxFiles bounds the number of files in a bundle; a PEFT adapter has
	// two or three.
	MaxFiles = 64
	// MaxNameLen bounds a file name, in bytes.
	MaxNameLen = 255
	// MaxSize bounds a whole bundle, in bytes; msgpack's bin32 cannot hold
	// a larger file anyway.
	MaxSize int64 = 4 << 30
)

// Encode returns the bundle holding files, deterministically: the same
// files always give the same bytes.
func Encode(files map[string][]byte) ([]byte, error) {
	names, err := checkNames(files)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	total := 64
	for _, n := range names {
		total += len(n) + len(files[n]) + 16
	}
	if int64(total) > MaxSize {
		return nil, fmt.Errorf("bundle: %d bytes of files exceed the %d-byte limit", total, MaxSize)
	}
	var buf bytes.Buffer
	buf.Grow(total)
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	steps := []func() error{
		func() error { return enc.EncodeMapLen(3) },
		func() error { return enc.EncodeString("format") },
		func() error { return enc.EncodeString(FormatName) },
		func() error { return enc.EncodeString("version") },
		func() error { return enc.EncodeInt(Version) },
		func() error { return enc.EncodeString("files") },
		func() error { return enc.EncodeMapLen(len(names)) },
	}
	for _, n := range names {
		steps = append(steps,
			func() error { return enc.EncodeString(n) },
			func() error { return enc.EncodeBytes(nonNil(files[n])) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// nonNil keeps an empty file a (zero-length) bin rather than msgpack nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// checkNames validates the file names and returns them sorted.
func checkNames(files map[string][]byte) ([]string, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("no files")
	}
	if len(files) > MaxFiles {
		return nil, fmt.Errorf("%d files exceed the limit of %d", len(files), MaxFiles)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if err := checkName(n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// checkName accepts plain file names, and plain file names one plain
// directory down ("lora/adapter_config.json"), so that unpacking a bundle
// into a directory can never write outside it.
func checkName(n string) error {
	if len(n) > MaxNameLen {
		return fmt.Errorf("file name %.40q... is longer than %d bytes", n, MaxNameLen)
	}
	parts := strings.Split(n, "/")
	if len(parts) > 2 {
		return fmt.Errorf("file name %q is nested more than one directory deep", n)
	}
	for _, p := range parts {
		switch {
		case p == "" || p == "." || p == "..":
			return fmt.Errorf("file name %q is not a plain name (nor one directory down)", n)
		case strings.ContainsAny(p, "\\\x00"):
			return fmt.Errorf("file name %q contains a backslash or NUL", n)
		}
	}
	return nil
}

// Decode parses a bundle; name identifies it in errors (a path, say). The
// returned files share memory with data.
func Decode(data []byte, name string) (map[string][]byte, error) {
	files, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", name, err)
	}
	return files, nil
}

// WriteFile encodes files and writes them to path atomically: to a
// temporary file in the same directory, renamed over path once complete.
func WriteFile(path string, files map[string][]byte) error {
	data, err := Encode(files)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("bundle %s: %w", path, err)
	}
	return nil
}

// ReadFile reads and decodes the bundle at path, refusing files larger
// than MaxSize before reading them.
func ReadFile(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if st.Size() > MaxSize {
		return nil, fmt.Errorf("bundle %s: %d bytes exceed the %d-byte limit", path, st.Size(), MaxSize)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	return Decode(data, path)
}

// msgpack codes of the types a bundle uses.
func isMap(c byte) bool { return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 }
func isStr(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}
func isBin(c byte) bool { return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32 }
func isInt(c byte) bool {
	if msgpcode.IsFixedNum(c) {
		return true
	}
	switch c {
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64,
		msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		return true
	}
	return false
}
