// Command gen writes the demo dataset of examples/lora: short stories in
// the style of TinyStories about Pip, a little blue owl in the Mossy
// Hollow, and her friends, none of whom stories260K ever names. A LoRA
// fine-tune on them should make the model tell Pip's stories.
//
// Run from the repository root:
//
//	go run ./examples/lora/data/gen -out examples/lora/data
//
// The output depends only on -seed, so the committed files can be
// regenerated and checked (gen_test.go does).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/atomicfile"
)

// Sizes of the two splits.
const (
	trainStories = 150
	evalStories  = 30
)

func main() {
	out := flag.String("out", ".", "directory for train.jsonl and eval.jsonl")
	seed := flag.Uint64("seed", 1, "seed for the story choices")
	flag.Parse()
	train, eval := generate(*seed)
	for name, stories := range map[string][]string{"train.jsonl": train, "eval.jsonl": eval} {
		if err := atomicfile.WriteFile(filepath.Join(*out, name), jsonl(stories), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}

// generate writes distinct stories, cycling through every pairing of plot
// and friend so each is told several times in different words, and splits
// them into training and evaluation stories.
func generate(seed uint64) (train, eval []string) {
	r := rand.New(rand.NewPCG(seed, 0x50697021))
	type pairing struct{ plot, friend int }
	var pairs []pairing
	for p := range plots {
		for f := range friends {
			pairs = append(pairs, pairing{p, f})
		}
	}
	seen := map[string]bool{}
	var all []string
	for tries := 0; len(all) < trainStories+evalStories; tries++ {
		if tries > 100*(trainStories+evalStories) {
			panic("gen: too few distinct stories; add variations")
		}
		if tries%len(pairs) == 0 {
			r.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
		}
		pr := pairs[tries%len(pairs)]
		s := story(r, plots[pr.plot], friends[pr.friend])
		if !seen[s] {
			seen[s] = true
			all = append(all, s)
		}
	}
	return all[:trainStories], all[trainStories:]
}

// jsonl renders one {"text": ...} line per story.
func jsonl(stories []string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, s := range stories {
		if err := enc.Encode(struct {
			Text string `json:"text"`
		}{s}); err != nil {
			panic(err) // a string always encodes
		}
	}
	return buf.Bytes()
}
