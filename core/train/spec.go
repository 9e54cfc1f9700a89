package train

import (
	"encoding/json"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/peft"
)

// Spec is a whole training run, declared: the data, the PEFT method and its
// settings, the hyper-parameters, evaluation, checkpoints and seeds. The CLI
// maps its flags (or a --config run.yaml|run.json file) to a Spec, the
// browser and plugins carry one as JSON or msgpack, and Run carries it out
// the same way everywhere. A zero field takes the default documented beside
// it; the method's own defaults (learning rate, targets, virtual tokens)
// come from its peft.Method entry.
type Spec struct {
	// Data is the training data file (.jsonl records, .json list, .txt);
	// Records gives the records inline instead (the browser, plugins).
	Data    string        `json:"data,omitempty" yaml:"data,omitempty"`
	Records []data.Record `json:"records,omitempty" yaml:"records,omitempty"`
	// Eval and EvalRecords are the held-out data, evaluated before
	// training, every EvalEvery steps and at the end (optional).
	Eval        string        `json:"eval,omitempty" yaml:"eval,omitempty"`
	EvalRecords []data.Record `json:"eval_records,omitempty" yaml:"eval_records,omitempty"`
	// ChatTemplate renders {"messages"} records (empty: chosen from the
	// vocabulary).
	ChatTemplate string `json:"chat_template,omitempty" yaml:"chat_template,omitempty"`
	// SeqLen is the tokens per sequence (default 256, at most the model's
	// context less the method's virtual tokens).
	SeqLen int `json:"seq_len,omitempty" yaml:"seq_len,omitempty"`
	// Batch is the sequences per micro-batch (default 4).
	Batch int `json:"batch,omitempty" yaml:"batch,omitempty"`
	// Pack packs examples into full rows instead of padding each.
	Pack bool `json:"pack,omitempty" yaml:"pack,omitempty"`

	// Method is the peft.Method name ("lora", "prefix-tuning"); "a+b"
	// trains a mixed stack of several methods at once.
	Method string `json:"method,omitempty" yaml:"method,omitempty"`
	// Options are adapter_config.json fields applied over the method's
	// defaults ({"r": 16, "target_modules": ["q_proj", "v_proj"]}).
	Options map[string]any `json:"options,omitempty" yaml:"options,omitempty"`
	// Stack lists the adapters of a mixed stack, each with its own
	// options, instead of Method and Options.
	Stack []AdapterSpec `json:"stack,omitempty" yaml:"stack,omitempty"`
	// Config is a whole adapter_config.json instead of Method and Options.
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
	// Out is the output directory: adapter, checkpoints, metrics (empty:
	// nothing is written; the adapter stays attached for the caller).
	Out string `json:"out,omitempty" yaml:"out,omitempty"`
	// SaveEvery writes a checkpoint every so many steps (0: at the end).
	SaveEvery int `json:"save_every,omitempty" yaml:"save_every,omitempty"`
	// KeepCheckpoints keeps the newest so many checkpoints (nil: 2; 0 all).
	KeepCheckpoints *int `json:"keep_checkpoints,omitempty" yaml:"keep_checkpoints,omitempty"`
	// Resume continues from a checkpoint directory (or an Out directory:
	// its newest checkpoint).
	Resume string `json:"resume,omitempty" yaml:"resume,omitempty"`
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
