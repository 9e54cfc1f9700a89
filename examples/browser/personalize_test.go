package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/wasm/browser/engine"
)

// presets is web/presets.json: the page's pre-filled sentences and prompt
// and each personalizing method's settings.
type presets struct {
	Prompt      string   `json:"prompt"`
	MaxTokens   int      `json:"maxTokens"`
	Examples    []string `json:"examples"`
	HeldOut     string   `json:"heldOut"`
	MaxLossRise float64  `json:"maxLossRise"`
	Personalize []preset `json:"personalize"`
	Default     string   `json:"default"`
	Stopwords   []string `json:"stopwords"`
}

// preset is one personalizing method: the page's train request for it.
type preset struct {
	Value string `json:"value"`
	// InitTextFromFirstExample starts a soft prompt from the person's first
	// sentence (TrainRequest.InitText).
	InitTextFromFirstExample bool                `json:"initTextFromFirstExample"`
	Request                  engine.TrainRequest `json:"request"`
}

func readPresets(t *testing.T) (presets, []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("web", "presets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p presets
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("web/presets.json: %v", err)
	}
	held, err := os.ReadFile(filepath.Join("web", p.HeldOut))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(held), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return p, lines
}

var wordRE = regexp.MustCompile(`[a-z]+`)

func wordSet(text string) map[string]bool {
	set := map[string]bool{}
	for _, w := range wordRE.FindAllString(strings.ToLower(text), -1) {
		set[w] = true
	}
	return set
}

// newContentWords lists the words of after that the person's sentences
// use and before does not: at least four letters and not a stopword, so
// that "the" or "about" do not count as picking up a style. app.js marks
// the same words in the page's story.
func newContentWords(sentences []string, stopwords []string, before, after string) []string {
	theirs, had := wordSet(strings.Join(sentences, " ")), wordSet(before)
	var out []string
	for w := range wordSet(after) {
		if len(w) >= 4 && theirs[w] && !had[w] && !slices.Contains(stopwords, w) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return out
}

// TestPresetsPersonalize trains each method the page offers as
// personalization, with the page's own settings and sentences, for five
// seeds, and checks what the page promises: the story from the page's
// prompt picks up words of the sentences that the base model's story
// lacks in at least four seeds of five, and the adapter still tells
// stories: its loss on held-out TinyStories text is at most MaxLossRise
// above the base model's in every seed. The Playwright test checks the
// default method in the browser the same way.
func TestPresetsPersonalize(t *testing.T) {
	p, heldOut := readPresets(t)
	if !slices.ContainsFunc(p.Personalize, func(m preset) bool { return m.Value == p.Default }) {
		t.Fatalf("web/presets.json: default %q is not among the personalizing methods", p.Default)
	}
	model, err := os.ReadFile(filepath.Join("..", "..", "models", "stories260K", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, preset := range p.Personalize {
		t.Run(preset.Value, func(t *testing.T) {
			if preset.Request.Steps == 0 && preset.Request.Epochs == 0 {
				t.Fatal("the preset gives neither steps nor epochs")
			}
			e, err := engine.Load(model, "stories260K.gguf", cpu.New(), "cpu")
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			gen := engine.GenerateRequest{Prompt: p.Prompt, MaxTokens: p.MaxTokens, NoAdapter: true}
			before, err := e.Generate(gen)
			if err != nil {
				t.Fatal(err)
			}
			base, err := e.Evaluate(engine.EvaluateRequest{Texts: heldOut, NoAdapter: true})
			if err != nil {
				t.Fatal(err)
			}
			personalized := 0
			for seed := uint64(1); seed <= 5; seed++ {
				req := preset.Request
				req.Examples, req.Seed = p.Examples, seed
				if preset.InitTextFromFirstExample {
					req.InitText = p.Examples[0]
				}
				if _, err := e.Train(context.Background(), req, nil); err != nil {
					t.Fatal(err)
				}
				gen.NoAdapter = false
				after, err := e.Generate(gen)
				if err != nil {
					t.Fatal(err)
				}
				tuned, err := e.Evaluate(engine.EvaluateRequest{Texts: heldOut})
				if err != nil {
					t.Fatal(err)
				}
				words := newContentWords(p.Examples, p.Stopwords, before.Text, after.Text)
				rise := tuned.Loss/base.Loss - 1
				if len(words) > 0 {
					personalized++
				}
				t.Logf("seed %d: new words %v, held-out loss %.3f -> %.3f (%+.1f%%): %q", seed, words, base.Loss, tuned.Loss, 100*rise, after.Text)
				if rise > p.MaxLossRise {
					t.Errorf("seed %d: held-out loss rose %.1f%%, more than %.0f%%: the adapter forgets how to tell stories", seed, 100*rise, 100*p.MaxLossRise)
				}
			}
			if personalized < 4 {
				t.Errorf("the story took up words of the sentences in %d seeds of 5, want at least 4 (before: %q)", personalized, before.Text)
			}
		})
	}
}

func TestNewContentWords(t *testing.T) {
	got := newContentWords([]string{"The purple robot hummed about the Moon."}, []string{"about"},
		"Once there was a robot.", "The purple moon was about a robot, and it hummed; the end")
	if want := []string{"hummed", "moon", "purple"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := newContentWords([]string{"The robot."}, nil, "a robot", "the robot"); len(got) != 0 {
		t.Fatalf("got %v for a story that had every word already", got)
	}
}
