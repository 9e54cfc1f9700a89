package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/peft"
)

// Spec is a whole training run, declared: the data, the PEFT method and its
// settings, the hyper-parameters, evaluation, checkpoints and seeds. The CLI
// maps its flags (or a --config run.yaml|run.json file) to a Spec, the
// browser and plugins carry one as JSON or msgpack, and Run carries it out
// the same way everywhere. A zero field takes the default documented beside
// it (WithDefaults fills them in); the method's own defaults (learning
// rate, targets, virtual tokens) come from its peft.Method entry.
type Spec struct {
	// Model is the base model's path. Run does not load it (the caller
	// passes the loaded model); it is recorded in the adapter's config
	// (base_model_name_or_path, or the key the method's Flags["model"]
	// names), and the CLI loads it from a --config file.
	Model string `json:"model,omitempty" yaml:"model,omitempty"`

	// Data is the training data file (.jsonl records, .json list, .txt);
	// Records gives the records inline instead (the browser, plugins), and
	// Examples gives them already tokenized (Go callers only). Exactly one
	// of the three.
	Data     string         `json:"data,omitempty" yaml:"data,omitempty"`
	Records  []data.Record  `json:"records,omitempty" yaml:"records,omitempty"`
	Examples []data.Example `json:"-" yaml:"-"`
	// Eval, EvalRecords or EvalExamples are the held-out data, evaluated
	// before training, every EvalEvery steps and at the end (optional; at
	// most one of them).
	Eval         string         `json:"eval,omitempty" yaml:"eval,omitempty"`
	EvalRecords  []data.Record  `json:"eval_records,omitempty" yaml:"eval_records,omitempty"`
	EvalExamples []data.Example `json:"-" yaml:"-"`
	// ChatTemplate renders {"messages"} records: "auto" (or empty) uses
	// the model's own template when it has one (GGUF
	// tokenizer.chat_template, tokenizer_config.json chat_template) and
	// otherwise chatml or simple by the vocabulary; "model" insists on the
	// model's own; "chatml", "llama2" and "simple" are graft's built-ins.
	// Only assistant turns are trained on.
	ChatTemplate string `json:"chat_template,omitempty" yaml:"chat_template,omitempty"`
	// ChatTemplateVars are extra variables for the model's template, as
	// apply_chat_template's keyword arguments: {"enable_thinking": false}
	// for Qwen3, {"date_string": "26 Jul 2024"} for Llama 3.x.
	ChatTemplateVars map[string]any `json:"chat_template_vars,omitempty" yaml:"chat_template_vars,omitempty"`
	// SeqLen is the tokens per sequence (default 256, at most the model's
	// context less the method's virtual tokens).
	SeqLen int `json:"seq_len,omitempty" yaml:"seq_len,omitempty"`
	// Batch is the sequences per micro-batch (default 4).
	Batch int `json:"batch,omitempty" yaml:"batch,omitempty"`
	// Pack packs examples into full rows instead of padding each.
	Pack bool `json:"pack,omitempty" yaml:"pack,omitempty"`
	// AllowInvalidUTF8 reads data files with bytes that are not UTF-8,
	// replacing them with U+FFFD and warning with their file and line;
	// without it such a file is an error.
	AllowInvalidUTF8 bool `json:"allow_invalid_utf8,omitempty" yaml:"allow_invalid_utf8,omitempty"`

	// Method is the peft.Method name ("lora", "prefix-tuning"; default
	// "lora"); "a+b" trains a mixed stack of several methods at once.
	Method string `json:"method,omitempty" yaml:"method,omitempty"`
	// Options are adapter_config.json fields applied over the method's
	// defaults ({"r": 16, "target_modules": ["q_proj", "v_proj"]}).
	Options map[string]any `json:"options,omitempty" yaml:"options,omitempty"`
	// Stack lists the adapters of a mixed stack (peft.Stack), each with
	// its own options, instead of Method and Options; see stack.go.
	Stack []AdapterSpec `json:"stack,omitempty" yaml:"stack,omitempty"`
	// Config is a whole adapter_config.json instead of Options: it is
	// used as it is, without the method's defaults. Method may be left
	// empty; the config's peft_type names it.
	Config json.RawMessage `json:"config,omitempty" yaml:"config,omitempty"`
	// ConvertLoRA saves a PiSSA/OLoRA adapter as the equivalent plain LoRA
	// for the original base.
	ConvertLoRA bool `json:"convert_lora,omitempty" yaml:"convert_lora,omitempty"`

	// Steps or Epochs set the length of the run (one of them).
	Steps  int     `json:"steps,omitempty" yaml:"steps,omitempty"`
	Epochs float64 `json:"epochs,omitempty" yaml:"epochs,omitempty"`
	// LR is the peak learning rate (default: the method's recommended one).
	LR float64 `json:"lr,omitempty" yaml:"lr,omitempty"`
	// Warmup is the linear warm-up in steps (default 0).
	Warmup int `json:"warmup,omitempty" yaml:"warmup,omitempty"`
	// Schedule is "cosine" (default), "linear" or "constant".
	Schedule string `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	// GradAccum is the micro-batches per optimizer step (default 1).
	GradAccum int `json:"grad_accum,omitempty" yaml:"grad_accum,omitempty"`
	// WeightDecay is AdamW's decoupled weight decay (default 0).
	WeightDecay float64 `json:"weight_decay,omitempty" yaml:"weight_decay,omitempty"`
	// MaxGradNorm clips the global gradient norm (nil: 1; 0 disables).
	MaxGradNorm *float64 `json:"max_grad_norm,omitempty" yaml:"max_grad_norm,omitempty"`
	// Seed seeds the adapter's initialisation, the data order and dropout.
	Seed uint64 `json:"seed,omitempty" yaml:"seed,omitempty"`
	// Checkpointing recomputes each layer in the backward pass instead of
	// keeping its activations.
	Checkpointing bool `json:"checkpointing,omitempty" yaml:"checkpointing,omitempty"`

	// EvalEvery evaluates every so many steps (0: only at the end).
	EvalEvery int `json:"eval_every,omitempty" yaml:"eval_every,omitempty"`
	// Out is the output directory: the adapter in its method's format,
	// checkpoint-N directories, metrics.jsonl and loss_curve.svg (empty:
	// nothing is written).
	Out string `json:"out,omitempty" yaml:"out,omitempty"`
	// SaveEvery writes a checkpoint every so many steps and at the end
	// (0: no checkpoints; the adapter is saved into Out at the end either
	// way). It needs Out.
	SaveEvery int `json:"save_every,omitempty" yaml:"save_every,omitempty"`
	// KeepCheckpoints keeps the newest so many checkpoints (nil: 2; 0 all).
	KeepCheckpoints *int `json:"keep_checkpoints,omitempty" yaml:"keep_checkpoints,omitempty"`
	// Resume continues from a checkpoint directory (or an Out directory:
	// its newest checkpoint). Each checkpoint records the run's settings
	// and a fingerprint of its training data (RunFile); Run refuses to
	// resume with other ones, listing the differences, unless Force.
	Resume string `json:"resume,omitempty" yaml:"resume,omitempty"`
	// Force resumes even when the settings or the data differ from the
	// checkpoint's; Run then warns with each difference.
	Force bool `json:"force,omitempty" yaml:"force,omitempty"`
	// Overwrite lets a run that does not resume write into an Out
	// directory that holds another run (an adapter, checkpoints,
	// metrics.jsonl); its checkpoints and adapter files are removed
	// first, so that nothing of the two runs mixes. Without it Run
	// refuses such a directory.
	Overwrite bool `json:"overwrite,omitempty" yaml:"overwrite,omitempty"`
}

// AdapterSpec is one adapter of a mixed stack.
type AdapterSpec struct {
	Method  string         `json:"method" yaml:"method"`
	Options map[string]any `json:"options,omitempty" yaml:"options,omitempty"`
}

// RunResult is what Run did: the fit's Result, the adapter it trained
// (still attached to the model; with Spec.Out set it is saved there too),
// the held-out loss before training (NaN without eval data, or on a
// resumed run), the parameter counts and the effective Spec, defaults
// filled in. On cancellation Run returns the result so far together with
// ctx's error, the adapter still attached.
//
// Run itself is:
//
//	func Run(ctx context.Context, m *model.Model, spec Spec, onEvent func(Event)) (*RunResult, error)
type RunResult struct {
	Result
	Adapter         peft.Adapter
	EvalBefore      float64
	TrainableParams int64
	TotalParams     int64
	// Examples is the number of training examples after tokenizing.
	Examples int
	Spec     Spec
}

// The defaults of a Spec's zero fields. The method's own (learning rate,
// adapter settings) come from its peft.Method: LR and Defaults.
const (
	DefaultMethod = "lora"
	// DefaultSeqLen is capped by Run to the model's context less the
	// method's virtual tokens.
	DefaultSeqLen          = 256
	DefaultBatch           = 4
	DefaultGradAccum       = 1
	DefaultSchedule        = ScheduleCosine
	DefaultMaxGradNorm     = 1.0
	DefaultKeepCheckpoints = 2
)

// ErrInvalidSpec is wrapped by the errors that lie in a Spec itself (a
// value out of range, an unknown method, a sequence longer than the
// model's context), as opposed to the data or the run: callers such as
// the CLI report those as usage errors.
var ErrInvalidSpec = errors.New("invalid training spec")

// specError is an error in a Spec: errors.Is finds both the cause and
// ErrInvalidSpec.
type specError struct{ error }

func (e specError) Unwrap() []error { return []error{e.error, ErrInvalidSpec} }

func invalidf(format string, a ...any) error { return specError{fmt.Errorf(format, a...)} }

// WithDefaults returns the Spec with every zero field that has a default
// set to it: the constants above, the method's learning rate, and Options
// as the whole set of adapter settings (the method's Defaults, then
// Options over them). A whole Config is left as it is. SeqLen is the uncapped default; Run caps
// it to the model. The receiver is not changed.
func (s Spec) WithDefaults() Spec {
	if s.Method == "" && len(s.Config) == 0 && len(s.Stack) == 0 {
		s.Method = DefaultMethod
	}
	if s.SeqLen == 0 {
		s.SeqLen = DefaultSeqLen
	}
	if s.Batch == 0 {
		s.Batch = DefaultBatch
	}
	if s.GradAccum == 0 {
		s.GradAccum = DefaultGradAccum
	}
	if s.Schedule == "" {
		s.Schedule = DefaultSchedule
	}
	if s.MaxGradNorm == nil {
		v := DefaultMaxGradNorm
		s.MaxGradNorm = &v
	}
	if s.KeepCheckpoints == nil {
		v := DefaultKeepCheckpoints
		s.KeepCheckpoints = &v
	}
	if s.IsStack() {
		return s.stackDefaults()
	}
	meth, err := s.method()
	if err != nil {
		return s // Validate reports it
	}
	if s.LR == 0 {
		s.LR = meth.LR
	}
	if len(s.Config) == 0 {
		s.Options = s.options(meth)
	}
	return s
}

// options returns the method's Defaults with Options over them, in a new
// map.
func (s Spec) options(meth peft.Method) map[string]any {
	out := make(map[string]any, len(meth.Defaults)+len(s.Options))
	maps.Copy(out, meth.Defaults)
	maps.Copy(out, s.Options)
	return out
}

// IsStack reports whether the Spec trains a mixed stack: Stack is set, or
// Method joins several methods with "+".
func (s Spec) IsStack() bool { return len(s.Stack) > 0 || strings.Contains(s.Method, "+") }

// method returns the PEFT method the Spec trains: Method, or the
// peft_type of Config. A stack has several (see StackParts).
func (s Spec) method() (peft.Method, error) {
	if s.IsStack() {
		return peft.Method{}, invalidf("method %q is a mixed stack, not one method", s.stackName())
	}
	var peftType string
	if len(s.Config) > 0 {
		var head struct {
			PeftType string `json:"peft_type"`
		}
		if err := json.Unmarshal(s.Config, &head); err != nil {
			return peft.Method{}, invalidf("config: %w", err)
		}
		peftType = head.PeftType
	}
	if s.Method != "" {
		meth, err := peft.LookupMethod(s.Method)
		if err != nil {
			return peft.Method{}, specError{err}
		}
		if peftType != "" && peftType != meth.PeftType {
			return peft.Method{}, invalidf("config: peft_type %q is not method %s's %q", peftType, meth.Name, meth.PeftType)
		}
		return meth, nil
	}
	for _, meth := range peft.Methods() {
		if peftType != "" && meth.PeftType == peftType {
			return meth, nil
		}
	}
	return peft.Method{}, invalidf("config: peft_type %q is not supported (supported: %v)", peftType, peft.PeftTypes())
}

// stackName names a mixed stack for errors.
func (s Spec) stackName() string {
	if len(s.Stack) == 0 {
		return s.Method
	}
	names := make([]string, len(s.Stack))
	for i, a := range s.Stack {
		names[i] = a.Method
	}
	return strings.Join(names, "+")
}

// adapterConfig returns the adapter_config.json document that creates the
// adapter of a Spec with defaults applied: Config as it is, or Options
// with the method's peft_type and Model under the method's base-model key
// (unless Options set that key).
func (s Spec) adapterConfig(meth peft.Method) ([]byte, error) {
	if len(s.Config) > 0 {
		if len(s.Options) > 0 {
			return nil, invalidf("give options or a whole config, not both")
		}
		return s.Config, nil
	}
	doc := maps.Clone(s.Options)
	if doc == nil {
		doc = map[string]any{}
	}
	if pt, ok := doc["peft_type"]; ok && pt != meth.PeftType {
		return nil, invalidf("options: peft_type %v is not method %s's %q", pt, meth.Name, meth.PeftType)
	}
	doc["peft_type"] = meth.PeftType
	if key := meth.Flags["model"]; key != "" && s.Model != "" {
		if _, ok := doc[key]; !ok {
			doc[key] = s.Model
		}
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, invalidf("options: %w", err)
	}
	return js, nil
}

// Validate checks the Spec as far as it can be checked without a model
// or its data: one data source, a known method whose settings its
// Validate accepts, one of steps and epochs, and every number in range.
// Every problem found is reported, joined; each wraps ErrInvalidSpec.
// Run validates again; call Validate to fail before loading a model.
func (s Spec) Validate() error {
	s = s.WithDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, invalidf(format, a...)) }

	switch n := count(s.Data != "", len(s.Records) > 0, len(s.Examples) > 0); {
	case n == 0:
		bad("no training data: set data (a file) or records")
	case n > 1:
		bad("give one of data, records and examples")
	}
	if count(s.Eval != "", len(s.EvalRecords) > 0, len(s.EvalExamples) > 0) > 1 {
		bad("give one of eval, eval_records and eval_examples")
	}
	if s.IsStack() {
		errs = append(errs, s.checkStack()...)
	} else if meth, err := s.method(); err != nil {
		errs = append(errs, err)
	} else if doc, err := s.adapterConfig(meth); err != nil {
		errs = append(errs, err)
	} else {
		if meth.Validate != nil {
			if err := meth.Validate(doc); err != nil {
				bad("%s: %w", meth.Name, err)
			}
		}
		if s.ConvertLoRA {
			if init, _ := settings(doc)["init_lora_weights"].(string); !strings.HasPrefix(init, "pissa") && init != "olora" {
				bad("convert_lora applies to LoRA initialised with pissa, pissa_niter_N or olora (init_lora_weights)")
			}
		}
	}
	if s.Batch < 1 {
		bad("batch is %d, want 1 or more", s.Batch)
	}
	if s.SeqLen < 2 {
		bad("seq_len is %d, want 2 or more", s.SeqLen)
	}
	tc := s.trainConfig()
	if s.SaveEvery > 0 && s.Out == "" {
		bad("save_every is %d but out is empty: checkpoints need an output directory", s.SaveEvery)
		tc.SaveEvery = 0
	}
	if err := tc.Validate(); err != nil {
		errs = append(errs, specError{err})
	}
	return errors.Join(errs...)
}

// ValidateFor checks the Spec as Validate does and, beyond that, against a
// model whose context holds contextLen tokens: the sequence length (an
// explicit one, or the default Run caps to the model) and the method's
// virtual tokens must fit in it. These are all of Run's checks that come
// before tokenizing, for callers (a server refusing a request) that know
// the model's context without holding the model.
func (s Spec) ValidateFor(contextLen int) error {
	if err := s.Validate(); err != nil {
		return err
	}
	docs, err := s.WithDefaults().adapterDocs()
	if err != nil {
		return err
	}
	_, err = fitSeqLen(s.SeqLen, contextLen, joinSettings(docs))
	return err
}

// trainConfig returns the Trainer's Config of a Spec with defaults
// applied.
func (s Spec) trainConfig() Config {
	tc := DefaultConfig()
	tc.Steps, tc.Epochs, tc.LR, tc.Warmup, tc.Schedule = s.Steps, s.Epochs, s.LR, s.Warmup, s.Schedule
	tc.GradAccum, tc.WeightDecay, tc.MaxGradNorm, tc.Seed = s.GradAccum, s.WeightDecay, *s.MaxGradNorm, s.Seed
	tc.EvalEvery, tc.SaveEvery, tc.KeepCheckpoints = s.EvalEvery, s.SaveEvery, *s.KeepCheckpoints
	tc.CheckpointDir = s.Out
	return tc
}

// settings decodes an adapter config document for the keys Run reads
// (virtual tokens, dropout); a document that is not an object gives none,
// and the method's constructor reports it.
func settings(doc []byte) map[string]any {
	var m map[string]any
	json.Unmarshal(doc, &m)
	return m
}

func count(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// ParseSpec reads a Spec from JSON, as --config files, the browser and
// plugins carry it. Unknown keys are errors, so a misspelt setting is
// never silently left at its default.
func ParseSpec(js []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("training spec: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Spec{}, errors.New("training spec: data after the JSON object")
	}
	return s, nil
}
