package main

import (
	"errors"
	"fmt"
	"strconv"
)

// Install hints, shown where a peer cannot run; the harness installs
// nothing itself.
const (
	torchHint    = "apt-get install python3-torch libopenblas0-pthread"
	nodeHint     = "install Node.js (apt-get install nodejs npm), then run `make llamacpp`"
	llamacppHint = "make llamacpp"
)

// side is one program's figures for a workload.
type side struct {
	Name       string         `json:"name"`
	TokensPerS float64        `json:"tokens_per_s,omitempty"`
	PeakRSS    int64          `json:"peak_rss_bytes,omitempty"`
	Output     map[string]any `json:"output,omitempty"` // the program's own JSON line
	Error      string         `json:"error,omitempty"`
	// Hint is the command that makes a missing peer available.
	Hint string `json:"hint,omitempty"`
}

func (s side) ok() bool { return s.Error == "" }

// fromChild turns a finished subprocess into a side, or records why it has
// no figures.
func fromChild(name string, res childResult, err error) side {
	s := side{Name: name, PeakRSS: res.PeakRSS, Output: res.Line}
	if err == nil {
		s.TokensPerS, err = res.number("tokens_per_s")
	}
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

// torchSide runs bench/torch_lora.py for a training workload. The script
// tries every split of the threads between PyTorch's intra-op pool and
// OpenBLAS, each in a subprocess of its own, and reports the fastest; so
// the peak RSS is that run's, from its JSON line, not the launcher's.
func (h *harness) torchSide(w workload) side {
	res, err := runChild(h.root, h.python, "bench/torch_lora.py", "--preset", w.Preset,
		"--steps", strconv.Itoa(w.Steps), "--warmup", strconv.Itoa(h.warmup),
		"--batch", strconv.Itoa(max(w.Batch, 1)), "--seq", strconv.Itoa(max(w.Seq, 2)), "--threads", strconv.Itoa(h.threads))
	name := "torch"
	if v, ok := res.Line["torch"].(string); ok {
		name = "torch " + v
	}
	if v, ok := res.Line["split"].(string); ok {
		name += " (" + v + ")"
	}
	s := fromChild(name, res, err)
	if rss, ok := res.Line["peak_rss_bytes"].(float64); ok && rss > 0 {
		s.PeakRSS = int64(rss)
	}
	if errors.Is(err, errNotFound) || res.ExitCode == 3 {
		s.Error, s.Hint = "PyTorch is not available", torchHint
		if errors.Is(err, errNotFound) {
			s.Error = h.python + " is not installed"
		}
	}
	return s
}

// llamaCppBudget caps each llama.cpp generation run, which then reports
// its rate over the tokens it made: a stalled multi-thread run (see
// llamaCppSide) would otherwise take minutes.
const llamaCppBudget = "30"

// llamaCppSide runs tools/llamacpp/generate_bench.mjs for a generation
// workload. llama.cpp's worker threads spin while they wait, and on a
// machine whose cores are busy with other work they can stall each other
// for milliseconds per token; so where more than one thread is asked for it
// also runs on one, and the faster run is the peer, so that graft is never
// compared with a stalled llama.cpp.
func (h *harness) llamaCppSide(w workload) side {
	threads := []int{h.threads}
	if h.threads > 1 {
		threads = append(threads, 1)
	}
	var best side
	var runs []map[string]any
	for _, t := range threads {
		res, err := runChild(h.root, h.node, "tools/llamacpp/generate_bench.mjs", "--model", w.Model,
			"--tokens", strconv.Itoa(w.GenTokens), "--threads", strconv.Itoa(t), "--prompt", h.promptFlag(),
			"--max-seconds", llamaCppBudget)
		s := fromChild(fmt.Sprintf("llama.cpp (%d thr)", t), res, err)
		switch {
		case errors.Is(err, errNotFound):
			s.Error, s.Hint = h.node+" is not installed", nodeHint
			return s
		case res.ExitCode == 3:
			s.Error, s.Hint = "node-llama-cpp is not installed in tools/llamacpp", llamacppHint
			return s
		case !s.ok():
			return s
		}
		runs = append(runs, map[string]any{"threads": t, "tokens_per_s": s.TokensPerS, "peak_rss_bytes": s.PeakRSS})
		if best.Name == "" || s.TokensPerS > best.TokensPerS {
			best = s
		}
	}
	if best.Output != nil {
		best.Output["runs"] = runs
	}
	return best
}
