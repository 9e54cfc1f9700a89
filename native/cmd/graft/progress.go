package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/graft-ml/graft/core/train"
)

// progress reports training events: a redrawn bar on a terminal, one plain
// line per step (at most a few per second) otherwise.
type progress struct {
	w        io.Writer
	quiet    bool
	terminal bool
	last     time.Time
	drawn    bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) event(e train.Event) {
	if p.quiet {
		return
	}
	switch e.Kind {
	case train.EventStep:
		final := e.Step == e.TotalSteps
		if !final && time.Since(p.last) < 200*time.Millisecond && e.Step != 1 {
			return
		}
		p.last = time.Now()
		if p.terminal {
			p.drawBar(e)
			return
		}
		fmt.Fprintf(p.w, "step %d/%d  loss %.4f  lr %.3g  grad-norm %.3g  %.0f tok/s  eta %s\n",
			e.Step, e.TotalSteps, e.Loss, e.LR, e.GradNorm, e.TokensPerSec, e.ETA.Round(time.Second))
	case train.EventEval:
		p.clear()
		fmt.Fprintf(p.w, "step %d/%d  eval loss %.4f\n", e.Step, e.TotalSteps, e.EvalLoss)
	case train.EventCheckpoint:
		p.clear()
		fmt.Fprintf(p.w, "step %d/%d  checkpoint %s\n", e.Step, e.TotalSteps, e.Path)
	}
}

func (p *progress) drawBar(e train.Event) {
	const width = 30
	filled := width * e.Step / max(1, e.TotalSteps)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	fmt.Fprintf(p.w, "\r%s %d/%d  loss %.4f  %.0f tok/s  eta %s\x1b[K", bar, e.Step, e.TotalSteps, e.Loss, e.TokensPerSec, e.ETA.Round(time.Second))
	p.drawn = true
}

// clear ends a drawn bar's line so that other output starts on its own.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func (p *progress) done() { p.clear() }
