package bundle

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// mapHeader stands for a msgpack map header in raw's parts.
type mapHeader int

// raw encodes parts one after another, so tests can build bundles with
// any key order, type or count.
func raw(t testing.TB, parts ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	for _, p := range parts {
		var err error
		switch v := p.(type) {
		case mapHeader:
			err = enc.EncodeMapLen(int(v))
		case string:
			err = enc.EncodeString(v)
		case []byte:
			err = enc.EncodeBytes(v)
		case int:
			err = enc.EncodeInt(int64(v))
		default:
			err = enc.Encode(v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func sampleFiles() map[string][]byte {
	return map[string][]byte{
		"adapter_config.json":       []byte(`{"peft_type": "LORA", "r": 8}`),
		"adapter_model.safetensors": bytes.Repeat([]byte{1, 2, 3, 250}, 20000), // > 64 KiB: bin32
		"empty.txt":                 {},
	}
}

func TestRoundTrip(t *testing.T) {
	files := sampleFiles()
	// A stack's part lies one directory down.
	files["lora/adapter_config.json"] = []byte(`{"peft_type": "LORA"}`)
	data, err := Encode(files)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data, "x.msgpack")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("got %d files, want %d", len(got), len(files))
	}
	for n, want := range files {
		if !bytes.Equal(got[n], want) {
			t.Errorf("file %s: %d bytes differ from the %d written", n, len(got[n]), len(want))
		}
	}
	again, err := Encode(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Error("encoding is not deterministic")
	}
}

// TestGolden pins the byte layout that JavaScript readers and older
// graft versions depend on.
func TestGolden(t *testing.T) {
	data, err := Encode(map[string][]byte{"b": {0xff}, "a": {}})
	if err != nil {
		t.Fatal(err)
	}
	const want = "83" + // map of 3
		"a6666f726d6174" + "ad67726166742d61646170746572" + // "format": "graft-adapter"
		"a776657273696f6e" + "01" + // "version": 1
		"a566696c6573" + "82" + // "files": map of 2, sorted
		"a161" + "c400" + // "a": bin8 of 0 bytes
		"a162" + "c401ff" // "b": bin8 [0xff]
	if got := hex.EncodeToString(data); got != want {
		t.Fatalf("bytes\n got %s\nwant %s", got, want)
	}
	// Any key order decodes alike.
	reordered := raw(t, mapHeader(3), "files", mapHeader(1), "a", []byte{7}, "version", 1, "format", FormatName)
	got, err := Decode(reordered, "r")
	if err != nil || !bytes.Equal(got["a"], []byte{7}) {
		t.Fatalf("reordered: %v %v", got, err)
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"none", map[string][]byte{}, "no files"},
		{"parent", map[string][]byte{"../x": {}}, "not a plain name"},
		{"deep", map[string][]byte{"a/b/c": {}}, "nested more than one directory deep"},
		{"leading slash", map[string][]byte{"/x": {}}, "not a plain name"},
		{"backslash", map[string][]byte{`a\b`: {}}, "backslash"},
		{"dotdot", map[string][]byte{"..": {}}, "not a plain name"},
		{"empty name", map[string][]byte{"": {}}, "not a plain name"},
		{"long", map[string][]byte{strings.Repeat("a", MaxNameLen+1): {}}, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	many := map[string][]byte{}
	for i := range MaxFiles + 1 {
		many[strings.Repeat("f", i+1)] = nil
	}
	if _, err := Encode(many); err == nil || !strings.Contains(err.Error(), "exceed the limit") {
		t.Fatalf("too many files: err = %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := func(extra ...any) []byte {
		return raw(t, append([]any{mapHeader(3 + len(extra)/2), "format", FormatName, "version", 1,
			"files", mapHeader(1), "a.json", []byte("{}")}, extra...)...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"not a map", raw(t, []int{1, 2}), "the top level is an array, want a map"},
		{"json", []byte(`{"format":"graft-adapter"}`), "not a graft adapter bundle"},
		{"other format", raw(t, mapHeader(3), "format", "other", "version", 1, "files", mapHeader(0)), `format "other" is not`},
		{"newer version", raw(t, mapHeader(3), "format", FormatName, "version", 2, "files", mapHeader(0)), "version 2 is not supported"},
		{"version as string", raw(t, mapHeader(3), "format", FormatName, "version", "1", "files", mapHeader(0)), `"version" is a string, want an integer`},
		{"no version", raw(t, mapHeader(2), "format", FormatName, "files", mapHeader(1), "a", []byte{}), `"version" is missing`},
		{"no format", raw(t, mapHeader(2), "version", 1, "files", mapHeader(1), "a", []byte{}), `"format" is missing`},
		{"no files", raw(t, mapHeader(2), "format", FormatName, "version", 1), `"files" is missing`},
		{"zero files", raw(t, mapHeader(3), "format", FormatName, "version", 1, "files", mapHeader(0)), "holds no files"},
		{"unknown key", good("extra", 1), `unknown key "extra"`},
		{"duplicate key", good("version", 1), `key "version" appears twice`},
		{"key not string", raw(t, mapHeader(1), 5, 1), "top-level key is an integer"},
		{"file as string", raw(t, mapHeader(3), "format", FormatName, "version", 1, "files", mapHeader(1), "a", "text"), `file "a" is a string, want bin`},
		{"file as nil", raw(t, mapHeader(3), "format", FormatName, "version", 1, "files", mapHeader(1), "a", nil), `file "a" is nil`},
		{"bad name", raw(t, mapHeader(3), "format", FormatName, "version", 1, "files", mapHeader(1), "../etc/passwd", []byte{}), "nested more than one directory deep"},
		{"duplicate file", raw(t, mapHeader(3), "format", FormatName, "version", 1, "files", mapHeader(2), "a", []byte{}, "a", []byte{}), `file "a" appears twice`},
		{"trailing bytes", append(good(), 0xc0), "1 unexpected bytes"},
		{"huge map", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, "claims 4294967295 entries"},
		{"huge file", append(raw(t, mapHeader(3), "format", FormatName, "version", 1, "files", mapHeader(1), "a"), 0xc6, 0xff, 0xff, 0xff, 0xf0, 1, 2), "claims 4294967280 bytes but only 2 remain"},
		{"huge string", []byte{0x81, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}, "claims 2147483647 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data, "in.msgpack")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "bundle in.msgpack: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to name the file and say %q", err, tc.want)
			}
		})
	}
}

// TestDecodeTruncated cuts a bundle at every length: each must fail
// cleanly.
func TestDecodeTruncated(t *testing.T) {
	data, err := Encode(map[string][]byte{"adapter_config.json": []byte("{}"), "w": bytes.Repeat([]byte{9}, 300)})
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if _, err := Decode(data[:n], "cut"); err == nil {
			t.Fatalf("a bundle cut to %d of %d bytes was accepted", n, len(data))
		}
	}
}

func TestWriteFileAndReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.msgpack")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := sampleFiles()
	if err := WriteFile(path, files); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got["adapter_config.json"], files["adapter_config.json"]) {
		t.Fatal("read back differs")
	}
	// A failed write leaves the old file and no temporary behind.
	if err := WriteFile(path, map[string][]byte{"a/b/c": nil}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the bundle", len(entries))
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.msgpack")); err == nil || !strings.Contains(err.Error(), "missing.msgpack") {
		t.Fatalf("missing file: err = %v", err)
	}
}
