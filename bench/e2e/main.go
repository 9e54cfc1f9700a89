// Command e2e is graft's end-to-end benchmark: LoRA training and greedy
// generation on stories260K and on a random-init model of SmolLM-135M's
// shape, each beside its peer measured in the same run: PyTorch
// (bench/torch_lora.py) for training, llama.cpp through node-llama-cpp
// (tools/llamacpp/generate_bench.mjs) for generation.
//
//	go run ./bench/e2e [-threads 2] [-steps 2] [-stories-steps 10] [-warmup 1]
//	                   [-batch 4] [-seq 256] [-stories-batch 8] [-stories-seq 64]
//	                   [-gen-tokens 64] [-stories-gen-tokens 400] [-only train,stories]
//	                   [-json out/bench/e2e.jsonl] [-checkpointing]
//
// Every workload runs in a fresh subprocess (graft's by re-executing this
// program with -worker), so each peak RSS belongs to that workload alone.
// It prints a table of tokens/s, their ratio (graft over peer) and peak RSS
// per workload, and writes the same as JSON lines. A peer that is not
// installed is reported with the command that installs it; the rest still
// runs. See bench/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// workload is one measurement: a kind of work on one model.
type workload struct {
	Name   string // e.g. "train-smol135m"
	Kind   string // "train" or "generate"
	Preset string // bench/torch_lora.py's --preset
	Model  string // absolute path of the GGUF file
	Steps  int    // timed optimizer steps (training)
	// Batch and Seq shape a training batch.
	Batch, Seq int
	// GenTokens is the number of tokens to generate (generation).
	GenTokens int
	// PeerModel, where set, makes the peer graft itself on that model (the
	// F32 base beside a quantized one) instead of PyTorch or llama.cpp.
	PeerModel string
	// Checkpointing trains both sides with per-layer activation
	// checkpointing whatever -checkpointing says.
	Checkpointing bool
}

// harness holds the settings shared by every workload.
type harness struct {
	root          string // repository root: children run there
	exe           string // this program, re-executed as the graft worker
	python, node  string
	threads       int
	warmup        int
	prompt        []int32
	checkpointing bool
	logf          func(string, ...any)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	threads := fs.Int("threads", 2, "threads for graft, PyTorch and llama.cpp")
	steps := fs.Int("steps", 2, "timed training steps on the 135M-shape model")
	storiesSteps := fs.Int("stories-steps", 10, "timed training steps on stories260K")
	warmup := fs.Int("warmup", 1, "untimed training steps before the timed ones")
	batch := fs.Int("batch", 4, "training batch size on the 135M-shape model")
	seq := fs.Int("seq", 256, "training sequence length on the 135M-shape model")
	storiesBatch := fs.Int("stories-batch", 8, "training batch size on stories260K")
	storiesSeq := fs.Int("stories-seq", 64, "training sequence length on stories260K")
	genTokens := fs.Int("gen-tokens", 64, "tokens to generate (timed) on the 135M-shape model")
	storiesGenTokens := fs.Int("stories-gen-tokens", 400, "tokens to generate (timed) on stories260K")
	promptFlag := fs.String("prompt", "1,10,20,30,40,50,60,70", "generation prompt as token ids")
	only := fs.String("only", "", "comma-separated substrings of workload names to run (default all: "+strings.Join(workloadNames, ", ")+")")
	jsonOut := fs.String("json", "", "JSON lines output (default out/bench/e2e.jsonl under the repository)")
	storiesPath := fs.String("stories", "", "stories260K GGUF (default models/stories260K/stories260K.gguf)")
	randomPath := fs.String("random-model", "", "cache path of the random 135M-shape GGUF, written when missing (default out/bench/smol135m-random.gguf)")
	python := fs.String("python", "/usr/bin/python3", "Python with PyTorch")
	node := fs.String("node", "node", "Node.js")
	checkpointing := fs.Bool("checkpointing", false, "train graft with per-layer activation checkpointing")
	worker := fs.String("worker", "", "internal: run one graft workload (train or generate) in this process")
	workerModel := fs.String("model", "", "internal: the worker's model")
	quantizeOut := fs.String("quantize-out", "", "internal: where the quantize worker writes -model quantized as Q4_K_M")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, c := range []struct {
		name  string
		value int
		least int
	}{{"threads", *threads, 1}, {"steps", *steps, 1}, {"stories-steps", *storiesSteps, 1}, {"warmup", *warmup, 0},
		{"batch", *batch, 1}, {"seq", *seq, 2}, {"stories-batch", *storiesBatch, 1}, {"stories-seq", *storiesSeq, 2}, {"gen-tokens", *genTokens, 1}, {"stories-gen-tokens", *storiesGenTokens, 1}} {
		if c.value < c.least {
			return fmt.Errorf("-%s %d: must be at least %d", c.name, c.value, c.least)
		}
	}
	prompt, err := parsePrompt(*promptFlag)
	if err != nil {
		return err
	}

	if *worker == "quantize" {
		return quantizeWorker(*workerModel, *quantizeOut, "q4_k_m")
	}
	if *worker != "" {
		return runWorker(*worker, workerOptions{
			Model: *workerModel, Threads: *threads, Steps: *steps, Warmup: *warmup,
			Batch: *batch, Seq: *seq, Checkpointing: *checkpointing, GenTokens: *genTokens, Prompt: prompt,
		})
	}

	h := &harness{python: *python, node: *node, threads: *threads, warmup: *warmup,
		prompt: prompt, checkpointing: *checkpointing,
		logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "e2e: "+f+"\n", a...) }}
	if h.root, err = findRoot(); err != nil {
		return err
	}
	if h.exe, err = os.Executable(); err != nil {
		return fmt.Errorf("cannot find this program to re-run it as the graft worker: %w", err)
	}
	// Paths given on the command line are relative to where it was typed;
	// the defaults to the repository.
	paths := []struct {
		dst  *string
		def  string
		flag string
	}{{jsonOut, "out/bench/e2e.jsonl", "json"}, {storiesPath, "models/stories260K/stories260K.gguf", "stories"},
		{randomPath, "out/bench/smol135m-random.gguf", "random-model"}}
	for _, p := range paths {
		if *p.dst == "" {
			*p.dst = filepath.Join(h.root, p.def)
		} else if *p.dst, err = filepath.Abs(*p.dst); err != nil {
			return fmt.Errorf("-%s: %w", p.flag, err)
		}
	}

	q4kmPath := strings.TrimSuffix(*randomPath, ".gguf") + "-q4_k_m.gguf"
	all := []workload{
		{Name: "train-stories260k", Kind: "train", Preset: "stories260k", Model: *storiesPath, Steps: *storiesSteps, Batch: *storiesBatch, Seq: *storiesSeq},
		{Name: "train-smol135m", Kind: "train", Preset: "smol135m", Model: *randomPath, Steps: *steps, Batch: *batch, Seq: *seq},
		{Name: "gen-stories260k", Kind: "generate", Model: *storiesPath, GenTokens: *storiesGenTokens},
		{Name: "gen-smol135m", Kind: "generate", Model: *randomPath, GenTokens: *genTokens},
		// QLoRA's memory saving is the frozen base's: without checkpointing
		// both runs hold the same 1.2 GiB of activations for 4 x 256 tokens
		// (30 layers), which hides it (0.73x at best), so this row
		// checkpoints both, as QLoRA recipes do.
		{Name: "train-smol135m-q4km", Kind: "train", Model: q4kmPath, Steps: *steps, Batch: *batch, Seq: *seq, PeerModel: *randomPath, Checkpointing: true},
		{Name: "gen-smol135m-q4km", Kind: "generate", Model: q4kmPath, GenTokens: *genTokens},
	}
	selected, err := selectWorkloads(all, *only)
	if err != nil {
		return err
	}
	for _, w := range selected {
		if w.Model == *randomPath || w.Model == q4kmPath {
			if err := ensureRandomModel(*randomPath, smol135m, 1, h.logf); err != nil {
				return err
			}
			break
		}
	}
	for _, w := range selected {
		if w.Model == q4kmPath {
			if err := h.ensureQuantized(*randomPath, q4kmPath, smol135m); err != nil {
				return err
			}
			break
		}
	}

	var rows []row
	for _, w := range selected {
		rows = append(rows, h.measure(w))
	}
	if err := printTable(os.Stdout, rows); err != nil {
		return err
	}
	if err := writeJSONLines(*jsonOut, rows); err != nil {
		return err
	}
	fmt.Printf("JSON lines: %s\n", *jsonOut)
	for _, r := range rows {
		if !r.Graft.ok() {
			return errors.New("a graft workload failed (see above)")
		}
	}
	return nil
}

// workloadNames lists the workloads in the order they run.
var workloadNames = []string{"train-stories260k", "train-smol135m", "gen-stories260k", "gen-smol135m", "train-smol135m-q4km", "gen-smol135m-q4km"}

// selectWorkloads keeps the workloads whose names contain one of the
// comma-separated terms of only (all of them when only is empty).
func selectWorkloads(all []workload, only string) ([]workload, error) {
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	terms := strings.Split(only, ",")
	used := make([]bool, len(terms))
	var out []workload
	for _, w := range all {
		keep := false
		for i, t := range terms {
			if t = strings.TrimSpace(t); t != "" && strings.Contains(w.Name, t) {
				keep, used[i] = true, true
			}
		}
		if keep {
			out = append(out, w)
		}
	}
	for i, t := range terms {
		if !used[i] {
			return nil, fmt.Errorf("-only: %q matches no workload (have %s)", t, strings.Join(workloadNames, ", "))
		}
	}
	return out, nil
}

func parsePrompt(s string) ([]int32, error) {
	var ids []int32
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("-prompt: %q is not a token id", f)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}

func (h *harness) promptFlag() string {
	parts := make([]string, len(h.prompt))
	for i, id := range h.prompt {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}

// findRoot walks up from the working directory to the repository root,
// recognized by go.mod beside bench/torch_lora.py.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if exists(filepath.Join(d, "go.mod")) && exists(filepath.Join(d, "bench", "torch_lora.py")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not inside the graft repository (no go.mod beside bench/torch_lora.py above it)", dir)
		}
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// measure runs graft and then its peer on one workload.
func (h *harness) measure(w workload) row {
	r := row{Workload: w.Name, Kind: w.Kind, Model: w.Model, Threads: h.threads}
	if w.Kind == "train" {
		r.Steps, r.Warmup, r.Batch, r.Seq, r.Checkpointing = w.Steps, h.warmup, w.Batch, w.Seq, h.checkpoints(w)
	} else {
		r.GenTokens = w.GenTokens
	}
	start := time.Now()
	h.logf("%s: graft", w.Name)
	r.Graft = h.graftSide(w)
	if w.PeerModel != "" {
		h.logf("%s: graft on %s", w.Name, filepath.Base(w.PeerModel))
		base := w
		base.Model = w.PeerModel
		r.Peer = h.graftSide(base)
		r.Peer.Name = r.Peer.Name + ", F32 base"
		r.PeerModel = w.PeerModel
	} else if w.Kind == "train" {
		h.logf("%s: PyTorch", w.Name)
		r.Peer = h.torchSide(w)
	} else {
		h.logf("%s: llama.cpp", w.Name)
		r.Peer = h.llamaCppSide(w)
	}
	r.score()
	h.logf("%s: done in %s", w.Name, time.Since(start).Round(time.Second))
	return r
}

// checkpoints reports whether graft trains w with activation checkpointing.
func (h *harness) checkpoints(w workload) bool { return h.checkpointing || w.Checkpointing }

// graftSide re-runs this program as a worker for one workload.
func (h *harness) graftSide(w workload) side {
	args := []string{"-worker", w.Kind, "-model", w.Model, "-threads", strconv.Itoa(h.threads),
		"-steps", strconv.Itoa(max(w.Steps, 1)), "-warmup", strconv.Itoa(h.warmup),
		"-batch", strconv.Itoa(max(w.Batch, 1)), "-seq", strconv.Itoa(max(w.Seq, 2)),
		"-gen-tokens", strconv.Itoa(max(w.GenTokens, 1)), "-prompt", h.promptFlag()}
	if h.checkpoints(w) {
		args = append(args, "-checkpointing")
	}
	res, err := runChild(h.root, h.exe, args...)
	name := "graft"
	if h.checkpoints(w) && w.Kind == "train" {
		name = "graft (checkpointing)"
	}
	return fromChild(name, res, err)
}
