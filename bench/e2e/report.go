package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/graft-ml/graft/core/atomicfile"
)

// row is one workload's result: a line of the table and of the JSON file.
type row struct {
	Workload      string `json:"workload"`
	Kind          string `json:"kind"`
	Model         string `json:"model"`
	PeerModel     string `json:"peer_model,omitempty"`
	Threads       int    `json:"threads"`
	Steps         int    `json:"steps,omitempty"`
	Warmup        int    `json:"warmup,omitempty"`
	Batch         int    `json:"batch,omitempty"`
	Seq           int    `json:"seq,omitempty"`
	GenTokens     int    `json:"gen_tokens,omitempty"`
	Checkpointing bool   `json:"checkpointing,omitempty"`
	Graft         side   `json:"graft"`
	Peer          side   `json:"peer"`
	// Ratio is graft's tokens/s over the peer's (0 when either is missing).
	Ratio float64 `json:"ratio,omitempty"`
	// Target is the goal for this workload; TargetMet is set when
	// both sides ran.
	Target    string `json:"target"`
	TargetMet *bool  `json:"target_met,omitempty"`
}

// targets are the issues' goals (16: training and generation beside
// PyTorch and llama.cpp; 14: a Q4_K_M base): graft/peer tokens/s at least minRatio and,
// where maxRSS is set, graft's peak RSS at most maxRSS times the peer's.
var targets = map[string]struct {
	minRatio float64
	maxRSS   float64
}{
	"train-stories260k":   {5, 0},
	"train-smol135m":      {3, 0.5},
	"gen-stories260k":     {1, 0},
	"gen-smol135m":        {1, 0},
	"train-smol135m-q4km": {0.7, 0.5}, // against graft on the F32 base
	"gen-smol135m-q4km":   {1, 0},
}

// score fills in the ratio and whether the target is met.
func (r *row) score() {
	t, known := targets[r.Workload]
	if known {
		r.Target = fmt.Sprintf(">=%gx", t.minRatio)
		if t.maxRSS > 0 {
			r.Target += fmt.Sprintf(", RSS <= %gx peer", t.maxRSS)
		}
	}
	if !r.Graft.ok() || !r.Peer.ok() || r.Peer.TokensPerS <= 0 {
		return
	}
	r.Ratio = r.Graft.TokensPerS / r.Peer.TokensPerS
	if known {
		met := r.Ratio >= t.minRatio
		if t.maxRSS > 0 {
			met = met && r.Graft.PeakRSS > 0 && r.Peer.PeakRSS > 0 && float64(r.Graft.PeakRSS) <= t.maxRSS*float64(r.Peer.PeakRSS)
		}
		r.TargetMet = &met
	}
}

// printTable writes the human-readable summary, then one line per side
// that failed or was skipped saying why (and what to install).
func printTable(w io.Writer, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tgraft tok/s\tpeer\tpeer tok/s\tratio\tgraft peak RSS\tpeer peak RSS\ttarget\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Workload,
			rate(r.Graft), r.Peer.Name, rate(r.Peer), ratio(r.Ratio),
			mib(r.Graft.PeakRSS), mib(r.Peer.PeakRSS), verdict(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// One line per ratio, for whoever copies the figures out of a run.
	for _, r := range rows {
		if r.Ratio == 0 {
			continue
		}
		if _, err := fmt.Fprintf(w, "ratio %s: graft %s tok/s / %s %s tok/s = %s (target %s)\n", r.Workload,
			rate(r.Graft), r.Peer.Name, rate(r.Peer), ratio(r.Ratio), verdict(r)); err != nil {
			return err
		}
	}
	for _, r := range rows {
		for _, s := range []side{r.Graft, r.Peer} {
			if s.ok() {
				continue
			}
			msg := firstLine(s.Error)
			if s.Hint != "" {
				msg += "; to run it: " + s.Hint
			}
			if _, err := fmt.Fprintf(w, "%s: %s: %s\n", r.Workload, s.Name, msg); err != nil {
				return err
			}
		}
	}
	return nil
}

func rate(s side) string {
	if !s.ok() {
		return "-"
	}
	return fmt.Sprintf("%.1f", s.TokensPerS)
}

func ratio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", x)
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func verdict(r row) string {
	switch {
	case r.TargetMet == nil:
		return r.Target + " (not measured)"
	case *r.TargetMet:
		return r.Target + " met"
	default:
		return r.Target + " MISSED"
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// writeJSONLines writes one JSON object per row, atomically: to a
// temporary file beside path that is renamed over it once complete.
func writeJSONLines(path string, rows []row) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("json output: %w", err)
	}
	if err := writeRows(path, rows); err != nil {
		return fmt.Errorf("json output %s: %w", path, err)
	}
	return nil
}

func writeRows(path string, rows []row) error {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // discards the temporary file unless committed
	enc := json.NewEncoder(f)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return f.Commit()
}
