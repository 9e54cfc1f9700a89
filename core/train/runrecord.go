package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/data"
)

// RunFile is written by Run into every checkpoint and beside the final
// adapter: the settings that shape the run and a fingerprint of its
// training data, so that a resume can tell whether it continues the same
// run.
const RunFile = "graft_run.json"

const (
	runFormat  = "graft-run"
	runVersion = 1
)

// ErrOtherRun is wrapped by Run's refusals to mix two runs: an Out
// directory that holds another run (without Overwrite), a checkpoint
// whose settings or data differ from the Spec's (without Force).
var ErrOtherRun = errors.New("another run")

// runRecord is RunFile's content.
type runRecord struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Settings are the hyper-parameters and adapter settings that change
	// what a run computes, by name: "lr", "steps", "seed", "seq_len", and
	// each adapter setting as "<method>.<key>" ("lora.r"). Values are
	// compared as JSON.
	Settings map[string]json.RawMessage `json:"settings"`
	Data     dataPrint                  `json:"data"`
}

// dataPrint identifies training data by its tokenized examples, which
// covers a file, inline records and examples alike, and also a change of
// tokenizer or chat template.
type dataPrint struct {
	Name     string `json:"name"` // the file, "records" or "examples" (not compared)
	SHA256   string `json:"sha256"`
	Examples int    `json:"examples"`
	Tokens   int    `json:"tokens"`
}

// fingerprint hashes examples: ids and loss flags, example by example.
func fingerprint(name string, exs []data.Example) dataPrint {
	h := sha256.New()
	var buf []byte
	tokens := 0
	for _, ex := range exs {
		buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(len(ex.IDs)))
		for i, id := range ex.IDs {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(id))
			if ex.Loss[i] {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
		}
		h.Write(buf)
		tokens += len(ex.IDs)
	}
	return dataPrint{Name: name, SHA256: hex.EncodeToString(h.Sum(nil)), Examples: len(exs), Tokens: tokens}
}

// newRunRecord records the run of s (defaults applied) over totalSteps
// steps with the adapters docs, trained on exs.
func newRunRecord(s Spec, docs []adapterDoc, totalSteps int, exs []data.Example) (*runRecord, error) {
	set := map[string]any{
		"method": s.MethodName(), "steps": totalSteps, "epochs": s.Epochs, "lr": s.LR, "warmup": s.Warmup,
		"schedule": s.Schedule, "grad_accum": s.GradAccum, "weight_decay": s.WeightDecay,
		"max_grad_norm": *s.MaxGradNorm, "seed": s.Seed, "batch": s.Batch, "seq_len": s.SeqLen, "pack": s.Pack,
		"chat_template": s.ChatTemplate, "chat_template_vars": s.ChatTemplateVars,
	}
	seen := map[string]int{}
	for _, d := range docs {
		prefix := d.meth.Name
		if seen[prefix]++; seen[prefix] > 1 {
			prefix = fmt.Sprintf("%s#%d", prefix, seen[prefix])
		}
		for k, v := range settings(d.doc) {
			// The base model's path may move between runs; its shape is
			// checked through the parameters' names and shapes.
			if k == "base_model_name_or_path" || k == d.meth.Flags["model"] {
				continue
			}
			set[prefix+"."+k] = v
		}
	}
	r := &runRecord{Format: runFormat, Version: runVersion, Settings: map[string]json.RawMessage{},
		Data: fingerprint(s.dataName(), exs)}
	for k, v := range set {
		js, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("run settings: %s: %w", k, err)
		}
		r.Settings[k] = js
	}
	return r, nil
}

// write saves the record into dir.
func (r *runRecord) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", RunFile, err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, RunFile), append(js, '\n'), 0o644)
}

// readRunRecord reads dir's RunFile; a directory without one (a
// checkpoint of an older graft) gives nil and no error.
func readRunRecord(dir string) (*runRecord, error) {
	path := filepath.Join(dir, RunFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r runRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Format != runFormat || r.Version != runVersion {
		return nil, fmt.Errorf("%s: format %q version %d, this build reads %q version %d", path, r.Format, r.Version, runFormat, runVersion)
	}
	return &r, nil
}

// difference is one setting that differs between a checkpoint's run and
// this one.
type difference struct{ key, old, new string }

func (d difference) String() string { return fmt.Sprintf("%s: %s → %s", d.key, d.old, d.new) }

// diff lists what differs from old to r, settings by name, then the data.
func (r *runRecord) diff(old *runRecord) []difference {
	var out []difference
	keys := slices.Sorted(maps.Keys(r.Settings))
	for k := range old.Settings {
		if _, ok := r.Settings[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		o, n := compact(old.Settings[k]), compact(r.Settings[k])
		if o != n {
			out = append(out, difference{k, o, n})
		}
	}
	if old.Data.SHA256 != r.Data.SHA256 {
		show := func(d dataPrint) string {
			return fmt.Sprintf("%s (%d examples, %d tokens, sha256 %.12s)", d.Name, d.Examples, d.Tokens, d.SHA256)
		}
		out = append(out, difference{"data", show(old.Data), show(r.Data)})
	}
	return out
}

// compact prints a JSON value in one line; a missing one is "(unset)".
func compact(js json.RawMessage) string {
	if js == nil {
		return "(unset)"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, js); err != nil {
		return string(js)
	}
	return buf.String()
}

// checkResume compares the run record of the checkpoint in dir with r.
// Without force a difference is an error listing them all, wrapping
// ErrOtherRun; with force each is passed to warn, with what a changed
// length does to the schedule. cfg and total are this run's trainer
// Config and length in steps.
func (r *runRecord) checkResume(dir string, force bool, cfg Config, total int, warn func(string)) error {
	old, err := readRunRecord(dir)
	if err != nil {
		return err
	}
	if old == nil {
		warn(fmt.Sprintf("%s has no %s (an older graft wrote it): its settings and data cannot be compared with this run's", dir, RunFile))
		return nil
	}
	diffs := r.diff(old)
	if len(diffs) == 0 {
		return nil
	}
	lines := make([]string, len(diffs))
	for i, d := range diffs {
		lines[i] = "  " + d.String()
		if d.key == "steps" {
			lines[i] += scheduleNote(dir, cfg, total, old)
		}
	}
	if !force {
		return fmt.Errorf("resume %s: the checkpoint is from %w, with other settings or data (old → new):\n%s\n"+
			"resume with the checkpoint's settings, train into another out directory, or continue anyway (force, --force)",
			dir, ErrOtherRun, strings.Join(lines, "\n"))
	}
	warn(fmt.Sprintf("resuming %s although its run had other settings or data (force; old → new):\n%s", dir, strings.Join(lines, "\n")))
	return nil
}

// scheduleNote says what a new run length does to the learning rate of
// the step after the checkpoint in dir: the schedule is laid over the new
// length, so the rate jumps.
func scheduleNote(dir string, cfg Config, total int, old *runRecord) string {
	var oldTotal int
	if err := json.Unmarshal(old.Settings["steps"], &oldTotal); err != nil || oldTotal <= 0 {
		return ""
	}
	st, err := readState(filepath.Join(dir, StateFile))
	if err != nil {
		return ""
	}
	was := cfg
	json.Unmarshal(old.Settings["lr"], &was.LR) // the old run's rate, if it had another
	// lrAt counts steps from 0: the next step is st.Step.
	return fmt.Sprintf(" (the %s schedule is laid over %d steps instead of %d: step %d's learning rate becomes %.4g instead of %.4g)",
		cfg.schedule(), total, oldTotal, st.Step+1, cfg.lrAt(st.Step, total), was.lrAt(st.Step, oldTotal))
}
