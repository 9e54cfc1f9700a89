package bundle

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that no input panics, and that whatever decodes
// re-encodes to a bundle that decodes to the same files.
func FuzzDecode(f *testing.F) {
	good, err := Encode(map[string][]byte{"adapter_config.json": []byte("{}"), "w": {1, 2, 3}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x80})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := Decode(data, "fuzz")
		if err != nil {
			return
		}
		again, err := Encode(files)
		if err != nil {
			t.Fatalf("decoded files do not encode: %v", err)
		}
		back, err := Decode(again, "again")
		if err != nil {
			t.Fatal(err)
		}
		for n, b := range files {
			if !bytes.Equal(back[n], b) {
				t.Fatalf("file %q changed", n)
			}
		}
	})
}
