package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// Files Run writes into Spec.Out beside the adapter.
const (
	MetricsFile   = "metrics.jsonl"
	LossCurveFile = "loss_curve.svg"
)

// Run carries out a training run on m as spec declares it; every runtime
// (the CLI, the browser, plugins, examples, benchmarks) trains through it.
// In order it:
//
//   - fills the defaults in (Spec.WithDefaults) and validates the Spec;
//     the sequence length is capped to the model's context less the
//     method's virtual tokens, and an explicit one that does not fit is an
//     error;
//   - tokenizes the data (data.Load for files, data.Tokenize for records)
//     and batches it (data.NewLoader: padded or packed rows, shuffled
//     each epoch; padding is the tokenizer's EOS at weight 0);
//   - creates the adapter through the method registry from its
//     adapter_config.json document, initialised from
//     rand.NewPCG(seed, seed^0x5eed) (a mixed stack's parts in order,
//     from that one generator); the trainer's own generator
//     (Config.Seed) orders the data and draws dropout;
//   - refuses activation checkpointing with dropout when an adapter cannot
//     replay its dropout masks in the recomputation;
//   - resumes from Spec.Resume, or evaluates the untrained adapter as the
//     baseline (an eval event at step 0, RunResult.EvalBefore);
//   - fits, with checkpoints in Spec.Out every Spec.SaveEvery steps (each
//     holding the adapter too), and saves the adapter into Spec.Out at the
//     end (as plain LoRA with Spec.ConvertLoRA), with metrics.jsonl (every
//     event but start; appended to on resume) and loss_curve.svg.
//
// onEvent (which may be nil) sees an EventStart before the first step,
// then every event of Trainer.Fit. Nothing is written before the Spec,
// the data and the adapter have been checked. Errors in the Spec wrap
// ErrInvalidSpec.
//
// The adapter stays attached to m when Run returns a result; with
// Spec.Out it is saved there too. When ctx is cancelled Run stops after
// the step in flight and returns the result so far with an error wrapping
// ctx's; no final adapter is saved (the checkpoints are). On any other
// error the adapter is removed and the result is nil. Run sets
// m.Checkpointing for the run and puts it back, and frees the training
// workspace before it returns.
func Run(ctx context.Context, m *model.Model, spec Spec, onEvent func(Event)) (*RunResult, error) {
	if m == nil {
		return nil, errors.New("train: Run needs a model")
	}
	s := spec.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	docs, err := s.adapterDocs()
	if err != nil {
		return nil, err
	}
	set := joinSettings(docs)
	// Everything that can refuse the run is checked before anything is
	// written: the sequence length, the output directory, the data.
	if s.SeqLen, err = fitSeqLen(spec.SeqLen, m.Config.Context, set); err != nil {
		return nil, err
	}
	if err := checkOut(s); err != nil {
		return nil, err
	}
	warn := func(msg string) {
		if onEvent != nil {
			onEvent(Event{Kind: EventWarning, Message: msg})
		}
	}
	trainEx, evalEx, err := s.tokenize(m, warn)
	if err != nil {
		return nil, err
	}
	pad := padID(m)
	loader, err := data.NewLoader(trainEx, data.LoaderOptions{Batch: s.Batch, SeqLen: s.SeqLen, Pack: s.Pack, Shuffle: true, PadID: pad})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.dataName(), err)
	}
	var evalBatches []data.Batch
	if evalEx != nil {
		if evalBatches, err = s.evalBatches(evalEx, pad); err != nil {
			return nil, err
		}
	}

	a, err := newAdapter(m, docs, rand.New(rand.NewPCG(s.Seed, s.Seed^0x5eed)))
	if err != nil {
		return nil, err
	}
	res, err := run(ctx, m, s, a, loader, evalBatches, trainEx, docs, set, warn, onEvent)
	if err != nil && res == nil {
		a.Unload()
	}
	return res, err
}

// run trains the attached adapter a; Run removes it when run returns no
// result.
func run(ctx context.Context, m *model.Model, s Spec, a peft.Adapter, loader *data.Loader, evalBatches []data.Batch,
	trainEx []data.Example, docs []adapterDoc, set map[string]any, warn func(string), onEvent func(Event)) (*RunResult, error) {
	examples := len(trainEx)
	saved := a
	if s.ConvertLoRA {
		var err error
		if saved, err = peft.SavedConverted(a); err != nil {
			return nil, specError{err}
		}
	}
	if p, ok := dropout(set); s.Checkpointing && ok {
		if err := replaysDropout(m); err != nil {
			return nil, invalidf("checkpointing with %s %g: %w", p.key, p.value, err)
		}
	}
	defer func(was bool) { m.Checkpointing = was }(m.Checkpointing)
	m.Checkpointing = s.Checkpointing
	defer m.FreeTrainingState()

	params := a.Params()
	tr, err := New(&LM{Model: m, Trainable: params, Mode: a.SetTraining}, m.Backend, LoaderSource(loader), evalBatches, s.trainConfig())
	if err != nil {
		return nil, err
	}
	defer tr.Free()
	record, err := newRunRecord(s, docs, tr.TotalSteps(), trainEx)
	if err != nil {
		return nil, err
	}
	// Each checkpoint also holds the adapter in its method's format, so a
	// checkpoint directory loads as an adapter directly, and the run's
	// record, so a resume can tell whether it continues the same run.
	tr.OnSave = func(dir string) error {
		if err := peft.Save(saved, dir); err != nil {
			return err
		}
		return record.write(dir)
	}
	var resumed string
	if s.Resume != "" {
		if resumed, err = resolveCheckpoint(s.Resume); err != nil {
			return nil, err
		}
		if err := record.checkResume(resumed, s.Force, s.trainConfig(), tr.TotalSteps(), warn); err != nil {
			return nil, err
		}
		if err := tr.Resume(resumed); err != nil {
			return nil, err
		}
	}

	res := &RunResult{Adapter: saved, EvalBefore: math.NaN(), TotalParams: m.Config.NumParams(), Examples: examples, Spec: s}
	for _, p := range params {
		res.TrainableParams += p.Value.Shape().Numel()
	}
	if s.Overwrite && s.Resume == "" {
		if err := clearOut(s.Out); err != nil {
			return nil, err
		}
	}
	out, err := openOutput(s.Out, resumed != "", tr.Step())
	if err != nil {
		return nil, err
	}
	defer out.close()
	emit := func(e Event) {
		out.event(e)
		if onEvent != nil {
			onEvent(e)
		}
	}
	emit(Event{Kind: EventStart, Step: tr.Step(), TotalSteps: tr.TotalSteps(), Path: resumed,
		TrainableParams: res.TrainableParams, TotalParams: res.TotalParams, Examples: examples,
		SeqLen: s.SeqLen, Pack: s.Pack})

	// The held-out loss before any training is the baseline the curve and
	// the summary compare against.
	if len(evalBatches) > 0 && tr.Step() == 0 {
		if res.EvalBefore, err = tr.Evaluate(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.evalName(), err)
		}
		emit(Event{Kind: EventEval, Step: 0, TotalSteps: tr.TotalSteps(), EvalLoss: res.EvalBefore})
	}
	r, fitErr := tr.Fit(ctx, emit)
	res.Result = r
	if err := out.finish(); err != nil && fitErr == nil {
		fitErr = err
	}
	if fitErr != nil {
		if ctx.Err() != nil && errors.Is(fitErr, ctx.Err()) {
			return res, fitErr
		}
		return nil, fitErr
	}
	if s.Out != "" {
		if err := peft.Save(saved, s.Out); err != nil {
			return nil, err
		}
		if err := record.write(s.Out); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// fitSeqLen caps the default sequence length to the model's context (of
// contextLen tokens) less the virtual tokens of the adapter settings, and
// checks an explicit one.
func fitSeqLen(asked, contextLen int, set map[string]any) (int, error) {
	virtual := 0
	if v, ok := set["num_virtual_tokens"].(float64); ok && v > 0 {
		virtual = int(v)
	}
	room := contextLen - virtual
	if asked == 0 {
		if room < 2 {
			return 0, invalidf("the model's context of %d leaves no room for a sequence beside %d virtual tokens", contextLen, virtual)
		}
		return min(DefaultSeqLen, room), nil
	}
	if asked > room {
		if virtual > 0 {
			return 0, invalidf("seq_len %d and %d virtual tokens exceed the model's context of %d", asked, virtual, contextLen)
		}
		return 0, invalidf("seq_len %d exceeds the model's context of %d", asked, contextLen)
	}
	return asked, nil
}

// tokenize reads the training and eval data into examples; eval is nil
// without eval data.
func (s Spec) tokenize(m *model.Model, warn func(string)) (trainEx, evalEx []data.Example, err error) {
	opt := data.DefaultOptions()
	opt.ChatTemplate, opt.TextSeqLen = s.ChatTemplate, s.SeqLen+1
	opt.ChatTemplateVars = s.ChatTemplateVars
	opt.AllowInvalidUTF8, opt.Warn = s.AllowInvalidUTF8, warn
	if opt.ModelChatTemplate, opt.ModelChatTemplateSource, err = m.ChatTemplate(); err != nil {
		return nil, nil, err
	}
	load := func(path string, recs []data.Record, exs []data.Example, name string) ([]data.Example, error) {
		if exs != nil {
			return exs, nil
		}
		if path == "" && recs == nil {
			return nil, nil
		}
		if m.Tokenizer == nil {
			return nil, fmt.Errorf("%s: the model has no tokenizer to encode it", name)
		}
		if path != "" {
			return data.Load(path, m.Tokenizer, opt)
		}
		o := opt
		o.Name = name
		return data.Tokenize(recs, m.Tokenizer, o)
	}
	if trainEx, err = load(s.Data, s.Records, s.Examples, s.dataName()); err != nil {
		return nil, nil, err
	}
	if evalEx, err = load(s.Eval, s.EvalRecords, s.EvalExamples, s.evalName()); err != nil {
		return nil, nil, err
	}
	return trainEx, evalEx, nil
}

// dataName and evalName name the data in errors.
func (s Spec) dataName() string { return nameOf(s.Data, len(s.Records) > 0, "records", "examples") }
func (s Spec) evalName() string {
	return nameOf(s.Eval, len(s.EvalRecords) > 0, "eval_records", "eval_examples")
}

func nameOf(path string, records bool, recName, exName string) string {
	switch {
	case path != "":
		return path
	case records:
		return recName
	}
	return exName
}

// padID is the token that fills padded rows (their loss weight is 0).
func padID(m *model.Model) int32 {
	if m.Tokenizer != nil {
		if eos := m.Tokenizer.EOS(); eos >= 0 {
			return eos
		}
	}
	return 0
}

// dropoutSetting is the first non-zero dropout probability of an adapter's
// settings.
type dropoutSetting struct {
	key   string
	value float64
}

// dropout finds a non-zero dropout probability among the adapter settings
// (lora_dropout, vera_dropout, dropout, ...).
func dropout(set map[string]any) (dropoutSetting, bool) {
	for key, v := range set {
		if p, ok := v.(float64); ok && p > 0 && (key == "dropout" || strings.HasSuffix(key, "_dropout")) {
			return dropoutSetting{key, p}, true
		}
	}
	return dropoutSetting{}, false
}

// replaysDropout checks that every adapter hook of the decoder blocks can
// repeat its dropout masks when checkpointing recomputes its layer;
// otherwise the gradients would belong to other masks than the loss.
func replaysDropout(m *model.Model) error {
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, lin := range l.Linears() {
			for _, h := range lin.Hooks() {
				if _, ok := h.(model.ForwardReplayer); !ok {
					return fmt.Errorf("the adapter on %s cannot replay its dropout masks", lin.Name)
				}
			}
		}
		for _, h := range []model.BlockHook{l.AttnOut, l.FFNOut} {
			if _, ok := h.(model.ForwardReplayer); h != nil && !ok {
				return fmt.Errorf("the bottleneck adapter of layer %d cannot replay its dropout masks", i)
			}
		}
	}
	return nil
}

// resolveCheckpoint accepts a checkpoint directory or an output directory
// holding checkpoint-N directories (the newest is taken).
func resolveCheckpoint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
		return dir, nil
	}
	latest, err := LatestCheckpoint(dir)
	if err != nil {
		return "", fmt.Errorf("resume %s: %w", dir, err)
	}
	return latest, nil
}

// checkOut refuses an Out directory that holds another run (its adapter,
// checkpoints, metrics or run record) unless the Spec resumes from a
// checkpoint in it or sets Overwrite: a new run would replace that
// adapter, and a later resume could pick up the other run's checkpoints.
func checkOut(s Spec) error {
	if s.Out == "" {
		return nil
	}
	st, err := os.Stat(s.Out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("out %s is a file, not a directory", s.Out)
	}
	found, err := runFiles(s.Out)
	if err != nil || len(found) == 0 || s.Overwrite {
		return err
	}
	if s.Resume != "" {
		ckpt, err := resolveCheckpoint(s.Resume)
		if err != nil {
			return err
		}
		if filepath.Clean(filepath.Dir(ckpt)) == filepath.Clean(s.Out) || filepath.Clean(ckpt) == filepath.Clean(s.Out) {
			return nil
		}
	}
	return fmt.Errorf("out %s holds %w (%s): continue it (resume, --resume %s), replace it (overwrite, --overwrite) or choose another directory",
		s.Out, ErrOtherRun, strings.Join(found, ", "), s.Out)
}

// runFiles lists the files of a run that dir holds, by name.
func runFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, e := range entries {
		if isRunFile(e) {
			found = append(found, e.Name())
		}
	}
	return found, nil
}

// isRunFile reports whether a directory entry is one of the files a run
// leaves in its Out directory.
func isRunFile(e fs.DirEntry) bool {
	switch name := e.Name(); {
	case e.IsDir():
		_, ok := checkpointStep(name)
		return ok
	default:
		return slices.Contains([]string{peft.ConfigFileName, peft.WeightsFileName, peft.BottleneckWeightsFileName, peft.StackManifestFileName, MetricsFile, RunFile}, name)
	}
}

// clearOut removes another run's checkpoints and adapter files from dir
// (Spec.Overwrite), a mixed stack's part folders included, so the new
// run's files are never mixed with them.
// metrics.jsonl and loss_curve.svg are rewritten by the new run anyway.
func clearOut(dir string) error {
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	remove := stackParts(dir)
	for _, e := range entries {
		if isRunFile(e) {
			remove = append(remove, e.Name())
		}
	}
	for _, name := range remove {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("overwrite %s: %w", dir, err)
		}
	}
	return nil
}

// stackParts lists the part folders of a mixed stack saved in dir (its
// graft_stack.json's subfolders that hold an adapter config), which go
// with the manifest.
func stackParts(dir string) []string {
	raw, err := os.ReadFile(filepath.Join(dir, peft.StackManifestFileName))
	if err != nil {
		return nil
	}
	var man struct {
		Parts []struct {
			Subfolder string `json:"subfolder"`
		} `json:"parts"`
	}
	if json.Unmarshal(raw, &man) != nil {
		return nil
	}
	var out []string
	for _, p := range man.Parts {
		if !filepath.IsLocal(p.Subfolder) || p.Subfolder == "." {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, p.Subfolder, peft.ConfigFileName)); err == nil {
			out = append(out, p.Subfolder)
		}
	}
	return out
}

// output writes metrics.jsonl and loss_curve.svg into a run's Out
// directory; with no directory it does nothing.
type output struct {
	dir    string
	file   *os.File
	write  func(Event)
	errFn  func() error
	events []Event
	// seen holds the kind and step of every event in the file, so that
	// a resumed run does not log again what the file has.
	seen map[eventKey]bool
}

type eventKey struct {
	kind string
	step int
}

// openOutput starts metrics.jsonl in dir. A resumed run keeps the lines
// of the steps up to the checkpoint it resumed at (step) and drops the
// rest, which a later run wrote or the resumed one repeats, so that each
// step is logged once.
func openOutput(dir string, resumed bool, step int) (*output, error) {
	o := &output{dir: dir, seen: map[eventKey]bool{}}
	if dir == "" {
		return o, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, MetricsFile)
	if resumed {
		kept, events, err := keptMetrics(path, step)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(path, kept, 0o644); err != nil {
			return nil, err
		}
		o.events = events
		for _, e := range events {
			o.seen[eventKey{e.Kind, e.Step}] = true
		}
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resumed {
		flags = os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	o.file = f
	o.write, o.errFn = MetricsWriter(f)
	return o, nil
}

// keptMetrics reads the metrics.jsonl lines a run resumed at step keeps:
// the events of earlier steps, and of that step those logged before its
// checkpoint was written (the step, its eval and the checkpoint); "done"
// lines go, the resumed run ends with its own. A missing file keeps
// nothing; a line that does not parse is kept as it is.
func keptMetrics(path string, step int) ([]byte, []Event, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var kept []byte
	var events []Event
	for line := range bytes.Lines(raw) {
		e, err := parseMetricsLine(line)
		if err == nil {
			if e.Step > step || e.Kind == EventDone {
				continue
			}
			events = append(events, e)
		}
		kept = append(kept, line...)
	}
	return kept, events, nil
}

func (o *output) event(e Event) {
	if o.file == nil || e.Kind == EventStart || e.Kind == EventWarning {
		return
	}
	key := eventKey{e.Kind, e.Step}
	if o.seen[key] {
		return
	}
	o.seen[key] = true
	o.write(e)
	o.events = append(o.events, e)
}

// finish checks the metrics and draws the loss curve of the events seen.
func (o *output) finish() error {
	if o.file == nil {
		return nil
	}
	var errs []error
	if err := o.errFn(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", MetricsFile, err))
	}
	path := filepath.Join(o.dir, LossCurveFile)
	var buf bytes.Buffer
	if err := PlotSVG(&buf, o.events); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	} else if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o *output) close() {
	if o.file != nil {
		o.file.Close()
	}
}
