package tokenizer

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// repoPath is a file the module ships for tests, given by its path from
// the module root (two levels above this package): the bundled stories260K
// under models/, the GPT-2 vocabulary and long texts under testdata/.
func repoPath(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

func readRepo(t testing.TB, parts ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath(parts...))
	if err != nil {
		t.Fatalf("test data missing: %v", err)
	}
	return data
}

func loadTok512(t testing.TB) *SentencePiece {
	t.Helper()
	sp, err := LoadLlama2C(readRepo(t, "models", "stories260K", "tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

var gpt2Once struct {
	sync.Once
	json []byte
	tok  *ByteLevelBPE
	err  error
}

// gpt2JSON builds the GPT-2 tokenizer.json once per test binary.
func gpt2JSON(t testing.TB) []byte {
	t.Helper()
	gpt2Once.Do(func() {
		enc, err1 := os.ReadFile(repoPath("testdata", "gpt2", "encoder.json"))
		bpe, err2 := os.ReadFile(repoPath("testdata", "gpt2", "vocab.bpe"))
		if err1 != nil || err2 != nil {
			gpt2Once.err = err1
			if err1 == nil {
				gpt2Once.err = err2
			}
			return
		}
		gpt2Once.json, gpt2Once.err = BuildGPT2TokenizerJSON(enc, bpe)
		if gpt2Once.err == nil {
			gpt2Once.tok, gpt2Once.err = ParseHFTokenizer(gpt2Once.json, "gpt2")
		}
	})
	if gpt2Once.err != nil {
		t.Fatalf("gpt2 tokenizer: %v", gpt2Once.err)
	}
	return gpt2Once.json
}

// loadGPT2 returns a fresh GPT-2 tokenizer (so tests may call SetBOS).
func loadGPT2(t testing.TB) *ByteLevelBPE {
	t.Helper()
	tok, err := ParseHFTokenizer(gpt2JSON(t), "gpt2")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// streamAll decodes ids through a StreamDecoder, one Push at a time.
func streamAll(tok Tokenizer, ids []int32) string {
	d := NewStreamDecoder(tok)
	var out []byte
	for _, id := range ids {
		out = append(out, d.Push(id)...)
	}
	return string(append(out, d.Flush()...))
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
