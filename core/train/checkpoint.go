package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// Files of a checkpoint directory.
const (
	// ParamsFile holds the trainable parameters, F32, by Param.Name.
	ParamsFile = "params.safetensors"
	// OptimizerFile holds AdamW's moments as "<name>.exp_avg" and
	// "<name>.exp_avg_sq", torch's names for them.
	OptimizerFile = "optimizer.safetensors"
	// StateFile is the JSON trainer state (see checkpointState).
	StateFile = "trainer_state.json"

	checkpointPrefix = "checkpoint-"
	stateFormat      = "graft-trainer-state"
	stateVersion     = 1
	maxStateBytes    = 64 << 20
)

// checkpointState is StateFile's content: everything besides the tensors
// that a resumed run needs to continue exactly where this one stopped.
type checkpointState struct {
	Format       string          `json:"format"`
	Version      int             `json:"version"`
	Step         int             `json:"step"`
	TotalSteps   int             `json:"total_steps"`
	Epoch        float64         `json:"epoch"`
	MicroBatches int             `json:"micro_batches"`
	Tokens       int             `json:"tokens"`
	LR           float64         `json:"lr"`   // learning rate of the last step
	Loss         float64         `json:"loss"` // training loss of the last step
	RNG          []byte          `json:"rng"`  // PCG.MarshalBinary, base64 in JSON
	Loader       json.RawMessage `json:"loader"`
	Config       Config          `json:"config"`
	LastEval     *evalJSON       `json:"last_eval,omitempty"`
	BestEval     *evalJSON       `json:"best_eval,omitempty"`
	Params       []paramJSON     `json:"params"`
}

type evalJSON struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

type paramJSON struct {
	Name  string       `json:"name"`
	Shape tensor.Shape `json:"shape"`
}

// checkpointPath is where the checkpoint after the given step goes.
func (t *Trainer) checkpointPath(step int) string {
	return filepath.Join(t.cfg.CheckpointDir, checkpointPrefix+strconv.Itoa(step))
}

// Save writes a checkpoint of the current state to
// CheckpointDir/checkpoint-<step> and returns its path. The files are
// written into a temporary directory beside it, which is renamed into place
// only when complete, so a crash never leaves a half-written checkpoint
// under the final name. Older checkpoints beyond KeepCheckpoints are then
// removed.
func (t *Trainer) Save() (string, error) {
	if t.cfg.CheckpointDir == "" {
		return "", errors.New("train: save: no checkpoint_dir configured")
	}
	final := t.checkpointPath(t.step)
	if err := os.MkdirAll(t.cfg.CheckpointDir, 0o755); err != nil {
		return "", fmt.Errorf("train: save: %w", err)
	}
	// A checkpoint of the same step from an earlier run is replaced whole.
	if err := atomicfile.WriteDir(final, t.writeCheckpoint); err != nil {
		return "", fmt.Errorf("train: save %s: %w", final, err)
	}
	t.lastCheckpoint = final
	if err := t.prune(); err != nil {
		return final, err
	}
	return final, nil
}

// writeCheckpoint writes the checkpoint files into dir.
func (t *Trainer) writeCheckpoint(dir string) error {
	params := make([]*tensor.Tensor, 0, len(t.params))
	moments := make([]*tensor.Tensor, 0, 2*len(t.params))
	state := t.state()
	for i, p := range t.params {
		for _, x := range []struct {
			name string
			buf  backend.Buffer
			dst  *[]*tensor.Tensor
		}{
			{p.Name, p.Value, &params},
			{p.Name + ".exp_avg", t.m[i], &moments},
			{p.Name + ".exp_avg_sq", t.v[i], &moments},
		} {
			tt, err := t.download(x.name, x.buf)
			if err != nil {
				return err
			}
			*x.dst = append(*x.dst, tt)
		}
		state.Params = append(state.Params, paramJSON{p.Name, p.Value.Shape().Clone()})
	}
	meta := map[string]string{"format": "pt"}
	if err := safetensors.WriteFile(filepath.Join(dir, ParamsFile), params, meta); err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(dir, OptimizerFile), moments, meta); err != nil {
		return err
	}
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("random state: %w", err)
	}
	state.RNG = rng
	if state.Loader, err = t.src.MarshalState(); err != nil {
		return fmt.Errorf("data source state: %w", err)
	}
	js, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", StateFile, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, StateFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if t.OnSave != nil {
		if err := t.OnSave(dir); err != nil {
			return fmt.Errorf("OnSave: %w", err)
		}
	}
	return nil
}

// state returns the scalar part of the checkpoint.
func (t *Trainer) state() checkpointState {
	s := checkpointState{
		Format: stateFormat, Version: stateVersion,
		Step: t.step, TotalSteps: t.total, Epoch: t.epoch(),
		MicroBatches: t.microBatches, Tokens: t.tokens,
		LR: t.lastLR, Loss: t.lastLoss, Config: t.cfg,
	}
	if ev := t.evals; ev.done && isFinite(ev.last) {
		s.LastEval = &evalJSON{ev.lastStep, ev.last}
	}
	if ev := t.evals; ev.hasBest {
		s.BestEval = &evalJSON{ev.bestStep, ev.best}
	}
	return s
}

// download reads a buffer back to the host as an F32 tensor.
func (t *Trainer) download(name string, b backend.Buffer) (*tensor.Tensor, error) {
	vals := make([]float32, numel(b))
	if err := t.be.Read(b, 0, vals); err != nil {
		return nil, fmt.Errorf("reading %q from %s: %w", name, t.be.Name(), err)
	}
	return tensor.FromFloat32(name, b.Shape(), vals)
}

// prune removes the oldest checkpoints beyond KeepCheckpoints.
func (t *Trainer) prune() error {
	if t.cfg.KeepCheckpoints <= 0 {
		return nil
	}
	steps, err := listCheckpoints(t.cfg.CheckpointDir)
	if err != nil {
		return fmt.Errorf("train: pruning checkpoints: %w", err)
	}
	for len(steps) > t.cfg.KeepCheckpoints {
		old := filepath.Join(t.cfg.CheckpointDir, checkpointPrefix+strconv.Itoa(steps[0]))
		if old != t.lastCheckpoint {
			if err := os.RemoveAll(old); err != nil {
				return fmt.Errorf("train: pruning checkpoints: %w", err)
			}
		}
		steps = steps[1:]
	}
	return nil
}

// listCheckpoints returns the steps of the checkpoint-<step> directories in
// dir, oldest first. Temporary directories (dot-prefixed) are not listed.
func listCheckpoints(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range entries {
		if n, ok := checkpointStep(e.Name()); ok && e.IsDir() {
			steps = append(steps, n)
		}
	}
	slices.Sort(steps)
	return steps, nil
}

// checkpointStep reads the step of a checkpoint-<step> name.
func checkpointStep(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// LatestCheckpoint returns the path of the checkpoint with the highest step
// in dir, or an error wrapping fs.ErrNotExist when there is none.
func LatestCheckpoint(dir string) (string, error) {
	steps, err := listCheckpoints(dir)
	if err != nil {
		return "", fmt.Errorf("train: %w", err)
	}
	if len(steps) == 0 {
		return "", fmt.Errorf("train: no checkpoint-<step> directory in %s: %w", dir, fs.ErrNotExist)
	}
	return filepath.Join(dir, checkpointPrefix+strconv.Itoa(steps[len(steps)-1])), nil
}

// Resume loads a checkpoint written by Save: parameters, AdamW moments, the
// random generator, the data source's position, the step and the eval
// history. The trainer's own Config governs the rest of the run; to
// continue bit-for-bit it must match the one the checkpoint was written
// with (the checkpoint keeps a copy in its state file). Everything is
// checked before anything is changed, so a failed Resume leaves the trainer
// as it was.
func (t *Trainer) Resume(dir string) error {
	if err := t.resume(dir); err != nil {
		return fmt.Errorf("train: resume %s: %w", dir, err)
	}
	return nil
}

func (t *Trainer) resume(dir string) error {
	st, err := readState(filepath.Join(dir, StateFile))
	if err != nil {
		return err
	}
	if st.Step > t.total {
		return fmt.Errorf("the checkpoint is at step %d, past this run's %d steps", st.Step, t.total)
	}
	if err := t.checkParamList(st.Params); err != nil {
		return fmt.Errorf("%s: %w", StateFile, err)
	}
	values, err := readTensors(filepath.Join(dir, ParamsFile), t.params, "")
	if err != nil {
		return err
	}
	ms, err := readTensors(filepath.Join(dir, OptimizerFile), t.params, ".exp_avg")
	if err != nil {
		return err
	}
	vs, err := readTensors(filepath.Join(dir, OptimizerFile), t.params, ".exp_avg_sq")
	if err != nil {
		return err
	}
	pcg := new(rand.PCG)
	if err := pcg.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("%s: random state: %w", StateFile, err)
	}

	// Everything is read and checked; apply it.
	if err := t.src.UnmarshalState(st.Loader); err != nil {
		return fmt.Errorf("%s: data source state: %w", StateFile, err)
	}
	for i, p := range t.params {
		for _, x := range []struct {
			dst  backend.Buffer
			vals []float32
		}{{p.Value, values[i]}, {t.m[i], ms[i]}, {t.v[i], vs[i]}} {
			if err := t.be.Write(x.dst, 0, x.vals); err != nil {
				return fmt.Errorf("writing %q to %s: %w", p.Name, t.be.Name(), err)
			}
		}
	}
	*t.pcg = *pcg
	t.step, t.tokens, t.microBatches = st.Step, st.Tokens, st.MicroBatches
	t.lastLoss, t.lastLR = st.Loss, st.LR
	t.evals = evalRecord{}
	if st.LastEval != nil {
		t.evals.done, t.evals.last, t.evals.lastStep = true, st.LastEval.Loss, st.LastEval.Step
	}
	if st.BestEval != nil {
		t.evals.hasBest, t.evals.best, t.evals.bestStep = true, st.BestEval.Loss, st.BestEval.Step
	}
	t.lastCheckpoint = dir
	return nil
}

// readState reads and checks a checkpoint's state file.
func readState(path string) (*checkpointState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) > maxStateBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxStateBytes)
	}
	var st checkpointState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case st.Format != stateFormat:
		return nil, fmt.Errorf("%s: format is %q, want %q", path, st.Format, stateFormat)
	case st.Version != stateVersion:
		return nil, fmt.Errorf("%s: version %d, this build reads version %d", path, st.Version, stateVersion)
	case st.Step < 0 || st.Tokens < 0 || st.MicroBatches < 0:
		return nil, fmt.Errorf("%s: negative step, token or batch count", path)
	}
	return &st, nil
}

// checkParamList checks that a checkpoint holds exactly the trainer's
// parameters, by name and shape.
func (t *Trainer) checkParamList(saved []paramJSON) error {
	byName := make(map[string]tensor.Shape, len(saved))
	for _, p := range saved {
		byName[p.Name] = p.Shape
	}
	for _, p := range t.params {
		shape, ok := byName[p.Name]
		if !ok {
			return fmt.Errorf("parameter %q is not in the checkpoint", p.Name)
		}
		if !shape.Equal(p.Value.Shape()) {
			return fmt.Errorf("parameter %q has shape %v in the checkpoint, %v here", p.Name, shape, p.Value.Shape())
		}
		delete(byName, p.Name)
	}
	if extra := slices.Sorted(maps.Keys(byName)); len(extra) > 0 {
		return fmt.Errorf("the checkpoint has parameter %q, which this objective lacks", extra[0])
	}
	return nil
}

// readTensors reads the tensor named p.Name+suffix for each parameter from
// a safetensors file, checking dtype and shape.
func readTensors(path string, params []model.Param, suffix string) ([][]float32, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([][]float32, len(params))
	for i, p := range params {
		name := p.Name + suffix
		tt, err := f.ReadTensor(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if tt.DType != tensor.F32 || !tt.Shape.Equal(p.Value.Shape()) {
			return nil, fmt.Errorf("%s: tensor %q is %v %v, want F32 %v", path, name, tt.DType, tt.Shape, p.Value.Shape())
		}
		if out[i], err = tt.Float32s(); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
	}
	return out, nil
}
