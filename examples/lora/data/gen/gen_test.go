package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/tokenizer"
)

// The committed dataset must be exactly what the generator writes, so it
// can be regenerated after a change to the stories.
func TestCommittedDataMatchesGenerator(t *testing.T) {
	train, eval := generate(1)
	for name, stories := range map[string][]string{"train.jsonl": train, "eval.jsonl": eval} {
		got, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, jsonl(stories)) {
			t.Errorf("%s differs from the generator's output; run: go run ./examples/lora/data/gen -out examples/lora/data", name)
		}
	}
}

func TestSplitsAreDisjointAndSized(t *testing.T) {
	train, eval := generate(1)
	if len(train) != trainStories || len(eval) != evalStories {
		t.Fatalf("%d train and %d eval stories", len(train), len(eval))
	}
	inTrain := map[string]bool{}
	for _, s := range train {
		inTrain[s] = true
	}
	for _, s := range eval {
		if inTrain[s] {
			t.Errorf("eval story also in train: %q", s)
		}
	}
}

// Every story is 3 to 6 sentences and at most 256 of stories260K's
// tokens (half its context); the whole files load through core/data as the demo loads them.
func TestStoriesFitTheDemoModel(t *testing.T) {
	raw, err := os.ReadFile("../../../../models/stories260K/tok512.bin")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(raw, 512)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"train.jsonl", "eval.jsonl"} {
		exs, err := data.Load(filepath.Join("..", name), tok, data.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i, ex := range exs {
			if len(ex.IDs) > 256 {
				t.Errorf("%s:%d: %d tokens, want at most 256", name, i+1, len(ex.IDs))
			}
			total += len(ex.IDs)
		}
		t.Logf("%s: %d stories, %d tokens, %.0f per story", name, len(exs), total, float64(total)/float64(len(exs)))
	}
	train, eval := generate(1)
	for _, s := range append(train, eval...) {
		// A sentence ends at . ! or ? outside quotes, or at a closing
		// quote after one when a new sentence (capital) follows.
		n, quoted := 0, false
		for i := 0; i < len(s); i++ {
			atEnd := i+1 == len(s)
			switch c := s[i]; {
			case c == '"':
				if quoted && strings.IndexByte(".!?", s[i-1]) >= 0 &&
					(atEnd || i+2 < len(s) && s[i+1] == ' ' && s[i+2] >= 'A' && s[i+2] <= 'Z') {
					n++
				}
				quoted = !quoted
			case !quoted && strings.IndexByte(".!?", c) >= 0 && (atEnd || s[i+1] == ' '):
				n++
			}
		}
		if n < 3 || n > 6 {
			t.Errorf("%d sentences: %q", n, s)
		}
	}
}
