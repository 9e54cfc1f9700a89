package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
)

const stories = "../../models/stories260K/stories260K.gguf"

func TestSelectWorkloads(t *testing.T) {
	all := make([]workload, len(workloadNames))
	for i, n := range workloadNames {
		all[i] = workload{Name: n}
	}
	for _, c := range []struct {
		only    string
		want    []string
		wantErr bool
	}{
		{"", workloadNames, false},
		{"smol", []string{"train-smol135m", "gen-smol135m", "train-smol135m-q4km", "gen-smol135m-q4km"}, false},
		{"train, gen-stories", []string{"train-stories260k", "train-smol135m", "gen-stories260k", "train-smol135m-q4km"}, false},
		{"gen-smol135m", []string{"gen-smol135m", "gen-smol135m-q4km"}, false},
		{"q4km", []string{"train-smol135m-q4km", "gen-smol135m-q4km"}, false},
		{"train,nope", nil, true},
	} {
		got, err := selectWorkloads(all, c.only)
		if (err != nil) != c.wantErr {
			t.Errorf("-only %q: error %v, want error %v", c.only, err, c.wantErr)
			continue
		}
		var names []string
		for _, w := range got {
			names = append(names, w.Name)
		}
		if !c.wantErr && !slices.Equal(names, c.want) {
			t.Errorf("-only %q selects %v, want %v", c.only, names, c.want)
		}
	}
}

func TestScore(t *testing.T) {
	ok := func(tps float64, rss int64) side { return side{Name: "x", TokensPerS: tps, PeakRSS: rss} }
	for _, c := range []struct {
		name        string
		r           row
		ratio       float64
		met, scored bool
	}{
		{"stories met", row{Workload: "train-stories260k", Graft: ok(600, 1), Peer: ok(100, 1)}, 6, true, true},
		{"stories missed", row{Workload: "train-stories260k", Graft: ok(400, 1), Peer: ok(100, 1)}, 4, false, true},
		{"smol fast but fat", row{Workload: "train-smol135m", Graft: ok(310, 60), Peer: ok(100, 100)}, 3.1, false, true},
		{"smol slow", row{Workload: "train-smol135m", Graft: ok(250, 10), Peer: ok(100, 100)}, 2.5, false, true},
		{"smol met", row{Workload: "train-smol135m", Graft: ok(310, 50), Peer: ok(100, 100)}, 3.1, true, true},
		{"q4km met", row{Workload: "train-smol135m-q4km", Graft: ok(80, 50), Peer: ok(100, 100)}, 0.8, true, true},
		{"q4km too fat", row{Workload: "train-smol135m-q4km", Graft: ok(80, 51), Peer: ok(100, 100)}, 0.8, false, true},
		{"q4km too slow", row{Workload: "train-smol135m-q4km", Graft: ok(60, 40), Peer: ok(100, 100)}, 0.6, false, true},
		{"gen missed", row{Workload: "gen-smol135m", Graft: ok(90, 1), Peer: ok(100, 1)}, 0.9, false, true},
		{"no peer", row{Workload: "gen-smol135m", Graft: ok(90, 1), Peer: side{Name: "llama.cpp", Error: "missing"}}, 0, false, false},
	} {
		c.r.score()
		if c.r.Ratio != c.ratio || (c.r.TargetMet != nil) != c.scored || c.scored && *c.r.TargetMet != c.met {
			t.Errorf("%s: ratio %v, met %v; want %v, %v (scored %v)", c.name, c.r.Ratio, c.r.TargetMet, c.ratio, c.met, c.scored)
		}
	}
}

func TestReport(t *testing.T) {
	rows := []row{
		{Workload: "train-stories260k", Graft: side{Name: "graft", TokensPerS: 1000, PeakRSS: 64 << 20}, Peer: side{Name: "torch 1.13", TokensPerS: 100, PeakRSS: 400 << 20}},
		{Workload: "gen-smol135m", Graft: side{Name: "graft", TokensPerS: 12}, Peer: side{Name: "llama.cpp", Error: "node is not installed", Hint: nodeHint}},
	}
	for i := range rows {
		rows[i].score()
	}
	var buf bytes.Buffer
	if err := printTable(&buf, rows); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"10.00x", "64 MiB", "400 MiB", ">=5x met", "(not measured)",
		"ratio train-stories260k: graft 1000.0 tok/s / torch 1.13 100.0 tok/s = 10.00x (target >=5x met)", "gen-smol135m: llama.cpp: node is not installed; to run it: " + nodeHint} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	path := filepath.Join(t.TempDir(), "out", "e2e.jsonl")
	if err := writeJSONLines(path, rows); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(raw)), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"hint":`) {
		t.Errorf("JSON lines:\n%s\nwant 2 lines, the second with the hint", raw)
	}
}

func TestTrainWorkload(t *testing.T) {
	out, err := trainWorkload(workerOptions{Model: stories, Threads: 1, Steps: 2, Warmup: 1, Batch: 2, Seq: 16})
	if err != nil {
		t.Fatal(err)
	}
	if tps, _ := out["tokens_per_s"].(float64); !(tps > 0) {
		t.Errorf("tokens_per_s = %v, want > 0 (%v)", out["tokens_per_s"], out)
	}
}

// TestGenerateWorkload checks that the timed loop makes the tokens that
// greedy Generate makes.
func TestGenerateWorkload(t *testing.T) {
	prompt := []int32{1, 10, 20, 30}
	out, err := generateWorkload(workerOptions{Model: stories, Threads: 1, GenTokens: 6, Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(stories, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	want, err := m.Generate(prompt, model.GenerateOptions{MaxTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["first_tokens"].([]int32); !slices.Equal(got, want[:len(got)]) || len(got) != 6 {
		t.Errorf("timed loop made %v, Generate %v", got, want)
	}
	if _, err := generateWorkload(workerOptions{Model: stories, GenTokens: 6, Prompt: []int32{1, 512}}); err == nil {
		t.Error("a prompt token outside the vocabulary was accepted")
	}
	if _, err := generateWorkload(workerOptions{Model: stories, GenTokens: 600, Prompt: prompt}); err == nil {
		t.Error("a generation longer than the context was accepted")
	}
}

// fakeProgram writes an executable shell script that exits with code
// after printing out.
func fakeProgram(t *testing.T, out string, code int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake")
	script := "#!/bin/sh\nprintf '%s\\n' '" + out + "'\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPeersMissing(t *testing.T) {
	w := workload{Name: "x", Kind: "train", Preset: "stories260k", Steps: 1, GenTokens: 1}
	for _, c := range []struct {
		name string
		h    harness
		run  func(*harness, workload) side
		hint string
	}{
		{"no python", harness{python: "/nonexistent/python3"}, (*harness).torchSide, torchHint},
		{"no torch", harness{python: fakeProgram(t, "", 3)}, (*harness).torchSide, torchHint},
		{"no node", harness{node: "/nonexistent/node"}, (*harness).llamaCppSide, nodeHint},
		{"no node-llama-cpp", harness{node: fakeProgram(t, "", 3)}, (*harness).llamaCppSide, llamacppHint},
	} {
		c.h.root, c.h.threads = t.TempDir(), 2
		s := c.run(&c.h, w)
		if s.ok() || s.Hint != c.hint {
			t.Errorf("%s: error %q, hint %q; want an error with hint %q", c.name, s.Error, s.Hint, c.hint)
		}
	}
}

func TestPeerFigures(t *testing.T) {
	h := &harness{root: t.TempDir(), threads: 2,
		python: fakeProgram(t, `{"tokens_per_s": 12.5, "torch": "9.9"}`, 0),
		node:   fakeProgram(t, `{"tokens_per_s": 40}`, 0)}
	w := workload{Name: "x", Preset: "stories260k", Steps: 1, GenTokens: 1}
	if s := h.torchSide(w); !s.ok() || s.TokensPerS != 12.5 || s.Name != "torch 9.9" || s.PeakRSS <= 0 {
		t.Errorf("torch side %+v: want 12.5 tokens/s from torch 9.9 with a peak RSS", s)
	}
	s := h.llamaCppSide(w)
	if runs, _ := s.Output["runs"].([]map[string]any); !s.ok() || s.TokensPerS != 40 || len(runs) != 2 {
		t.Errorf("llama.cpp side %+v: want 40 tokens/s over runs on 2 and 1 threads", s)
	}
	// The launcher's own RSS is not the run's: the winning split's, from
	// its JSON line, is.
	h.python = fakeProgram(t, `{"tokens_per_s": 20, "torch": "9.9", "split": "2x1", "peak_rss_bytes": 123456789}`, 0)
	if s := h.torchSide(w); !s.ok() || s.Name != "torch 9.9 (2x1)" || s.PeakRSS != 123456789 {
		t.Errorf("torch side %+v: want the split in the name and the JSON line's peak RSS", s)
	}
	h.python = fakeProgram(t, "not json", 0)
	if s := h.torchSide(w); s.ok() || s.Hint != "" {
		t.Errorf("garbled output gave %+v, want an error without an install hint", s)
	}
	if _, err := runChild(h.root, "/nonexistent/x"); !errors.Is(err, errNotFound) {
		t.Errorf("a missing program gave %v, want errNotFound", err)
	}
}
