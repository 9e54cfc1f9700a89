package abi

import (
	"github.com/vmihailenco/msgpack/v5"

	"github.com/graft-ml/graft/core/train"
)

// Operations a Request names.
const (
	OpPing          = "ping"           // no args, no result: the cost of a call
	OpInfo          = "info"           // no args; Info
	OpLoadModel     = "load_model"     // LoadModelArgs; ModelInfo
	OpLoadAdapter   = "load_adapter"   // LoadAdapterArgs; AdapterInfo
	OpUnloadAdapter = "unload_adapter" // AdapterRef; no result
	OpGenerate      = "generate"       // GenerateArgs; GenerateResult
	OpEval          = "eval"           // EvalArgs; EvalResult
	OpTrain         = "train"          // TrainArgs; TrainResult (Progress along the way)
	OpExportAdapter = "export_adapter" // ExportArgs; ExportResult
)

// Request is the envelope of every call: the operation and its arguments,
// themselves msgpack (empty for operations without arguments).
type Request struct {
	Op   string             `msgpack:"op" json:"op"`
	Args msgpack.RawMessage `msgpack:"args,omitempty" json:"args,omitempty"`
}

// Error codes of a Response.
const (
	// CodeBadRequest: the request could not be decoded or its arguments
	// are invalid. The instance is unchanged.
	CodeBadRequest = "bad_request"
	// CodeNoModel: the operation needs a model and none is loaded.
	CodeNoModel = "no_model"
	// CodeNotFound: the named adapter is not loaded.
	CodeNotFound = "not_found"
	// CodeExists: an adapter of that name is already loaded.
	CodeExists = "exists"
	// CodeStopped: the host asked through progress to stop; the result
	// holds what was done.
	CodeStopped = "stopped"
	// CodeInterrupted: the host's deadline or cancellation interrupted the
	// call at a safe point; the instance is intact and a training result
	// holds what was done.
	CodeInterrupted = "interrupted"
	// CodeFailed: the operation itself failed (a corrupt model, a
	// diverging run, ...).
	CodeFailed = "failed"
)

// Response is the envelope of every answer: an error (Code and Error) or
// a msgpack Result. A stopped training run has both.
type Response struct {
	Code   string             `msgpack:"code,omitempty" json:"code,omitempty"`
	Error  string             `msgpack:"error,omitempty" json:"error,omitempty"`
	Result msgpack.RawMessage `msgpack:"result,omitempty" json:"result,omitempty"`
}

// Info describes the plugin and what an instance holds.
type Info struct {
	ABIVersion uint32   `msgpack:"abi_version" json:"abi_version"`
	GoVersion  string   `msgpack:"go_version" json:"go_version"`
	PeftTypes  []string `msgpack:"peft_types" json:"peft_types"` // adapters it can load
	// Methods are the PEFT methods it trains (TrainArgs.Method), the
	// names of graft's method registry.
	Methods   []string   `msgpack:"methods" json:"methods"`
	Model     *ModelInfo `msgpack:"model,omitempty" json:"model,omitempty"`
	Adapters  []string   `msgpack:"adapters" json:"adapters"` // loaded, in load order
	HeapBytes uint64     `msgpack:"heap_bytes" json:"heap_bytes"`
	// MemoryBytes is the size of the guest's linear memory.
	MemoryBytes uint64 `msgpack:"memory_bytes" json:"memory_bytes"`
}

// Quantizations of LoadModelArgs.Quantize.
const QuantizeNF4 = "nf4"

// LoadModelArgs loads a base model, replacing the current one and
// dropping its adapters.
type LoadModelArgs struct {
	Name string `msgpack:"name" json:"name"` // for errors and ModelInfo.Name
	GGUF []byte `msgpack:"gguf" json:"gguf"` // the whole GGUF file
	// Quantize QuantizeNF4 quantizes the decoder projections to NF4 on
	// load (bitsandbytes' format), as graft train --quantize nf4 does, so
	// that LoRA trained on the model is QLoRA; DoubleQuant also quantizes
	// the block scales.
	Quantize    string `msgpack:"quantize,omitempty" json:"quantize,omitempty"`
	DoubleQuant bool   `msgpack:"double_quant,omitempty" json:"double_quant,omitempty"`
}

// ModelInfo describes a loaded model.
type ModelInfo struct {
	Name     string `msgpack:"name" json:"name"`
	Arch     string `msgpack:"arch" json:"arch"`
	Vocab    int    `msgpack:"vocab" json:"vocab"`
	Dim      int    `msgpack:"dim" json:"dim"`
	Layers   int    `msgpack:"layers" json:"layers"`
	Heads    int    `msgpack:"heads" json:"heads"`
	KVHeads  int    `msgpack:"kv_heads" json:"kv_heads"`
	Context  int    `msgpack:"context" json:"context"`
	Params   int64  `msgpack:"params" json:"params"`
	BOS      int32  `msgpack:"bos" json:"bos"` // -1 without a tokenizer
	EOS      int32  `msgpack:"eos" json:"eos"`
	HasVocab bool   `msgpack:"has_tokenizer" json:"has_tokenizer"`
	// Quantized is LoadModelArgs.Quantize.
	Quantized string `msgpack:"quantized,omitempty" json:"quantized,omitempty"`
}

// LoadAdapterArgs loads a saved adapter: its PEFT files (adapter_config.json,
// adapter_model.safetensors) or a msgpack bundle of them. Loaded adapters
// act together, as PEFT combines several active adapters.
type LoadAdapterArgs struct {
	Name   string            `msgpack:"name" json:"name"`
	Files  map[string][]byte `msgpack:"files,omitempty" json:"files,omitempty"`
	Bundle []byte            `msgpack:"bundle,omitempty" json:"bundle,omitempty"`
}

// AdapterInfo describes a loaded or trained adapter.
type AdapterInfo struct {
	Name      string   `msgpack:"name" json:"name"`
	PeftType  string   `msgpack:"peft_type" json:"peft_type"`
	Params    int64    `msgpack:"params" json:"params"` // trainable parameters
	Warnings  []string `msgpack:"warnings,omitempty" json:"warnings,omitempty"`
	Trainable []string `msgpack:"tensors,omitempty" json:"tensors,omitempty"` // parameter names
}

// AdapterRef names a loaded adapter.
type AdapterRef struct {
	Name string `msgpack:"name" json:"name"`
}

// GenerateArgs continues a prompt, given as text (encoded with the model's
// tokenizer, BOS first) or as token ids (used as they are).
type GenerateArgs struct {
	Prompt      string  `msgpack:"prompt,omitempty" json:"prompt,omitempty"`
	PromptIDs   []int32 `msgpack:"prompt_ids,omitempty" json:"prompt_ids,omitempty"`
	MaxTokens   int     `msgpack:"max_tokens" json:"max_tokens"`
	Temperature float32 `msgpack:"temperature" json:"temperature"` // 0: greedy
	TopK        int     `msgpack:"top_k,omitempty" json:"top_k,omitempty"`
	TopP        float32 `msgpack:"top_p,omitempty" json:"top_p,omitempty"`
	Seed        uint64  `msgpack:"seed,omitempty" json:"seed,omitempty"`
	StopAtEOS   bool    `msgpack:"stop_at_eos,omitempty" json:"stop_at_eos,omitempty"`
}

// GenerateResult holds the new tokens and, with a tokenizer, their text.
type GenerateResult struct {
	IDs  []int32 `msgpack:"ids" json:"ids"`
	Text string  `msgpack:"text" json:"text"`
}

// EvalArgs scores sequences: texts (encoded with BOS) or token ids.
type EvalArgs struct {
	Texts     []string  `msgpack:"texts,omitempty" json:"texts,omitempty"`
	Sequences [][]int32 `msgpack:"sequences,omitempty" json:"sequences,omitempty"`
	// Logits asks for every position's logits of every sequence.
	Logits bool `msgpack:"logits,omitempty" json:"logits,omitempty"`
}

// EvalResult is the summed and mean negative log-likelihood; Logits, when
// asked for, holds one [len(seq) * vocab] row-major slice per sequence.
type EvalResult struct {
	SumNLL     float64     `msgpack:"sum_nll" json:"sum_nll"`
	Tokens     int         `msgpack:"tokens" json:"tokens"`
	Loss       float64     `msgpack:"loss" json:"loss"`
	Perplexity float64     `msgpack:"perplexity" json:"perplexity"`
	Logits     [][]float32 `msgpack:"logits,omitempty" json:"logits,omitempty"`
}

// TrainArgs trains a new adapter of any PEFT method graft implements, as
// core/train.Run carries out a train.Spec, the same run graft train does.
// Spec gives the whole run (keys as in graft train --config run.json); the
// fields after it are the older way to say the same and, where set,
// override the Spec's: Method is a method name of graft's registry
// (Info.Methods: "lora", the default, "prompt-tuning", "houlsby"; a peft_type spelling
// such as "PROMPT_TUNING" or "prompt_tuning" names the same method; several
// joined by "+" train a mixed stack, saved with graft_stack.json) with
// Options over its defaults, or Config a whole adapter_config.json; Data and
// EvalData are JSONL in the formats graft train reads ({"text"},
// {"prompt","completion"}, {"messages"} or Alpaca records), which become
// the Spec's records. Zero fields take Run's defaults and the method's
// (its recommended learning rate, targets, virtual tokens). The plugin has
// no file system: the Spec's data, eval, out and resume must be empty.
type TrainArgs struct {
	Adapter string      `msgpack:"adapter" json:"adapter"` // name; "default" when empty
	Spec    *train.Spec `msgpack:"spec,omitempty" json:"spec,omitempty"`

	Config  []byte         `msgpack:"config,omitempty" json:"config,omitempty"`
	Method  string         `msgpack:"method,omitempty" json:"method,omitempty"`
	Options map[string]any `msgpack:"options,omitempty" json:"options,omitempty"`

	Data         []byte `msgpack:"data,omitempty" json:"data,omitempty"`
	EvalData     []byte `msgpack:"eval_data,omitempty" json:"eval_data,omitempty"`
	ChatTemplate string `msgpack:"chat_template,omitempty" json:"chat_template,omitempty"`

	Steps       int     `msgpack:"steps,omitempty" json:"steps,omitempty"`
	Batch       int     `msgpack:"batch,omitempty" json:"batch,omitempty"`
	SeqLen      int     `msgpack:"seq_len,omitempty" json:"seq_len,omitempty"`
	Pack        bool    `msgpack:"pack,omitempty" json:"pack,omitempty"`
	LR          float64 `msgpack:"lr,omitempty" json:"lr,omitempty"`
	Warmup      int     `msgpack:"warmup,omitempty" json:"warmup,omitempty"`
	Schedule    string  `msgpack:"schedule,omitempty" json:"schedule,omitempty"`
	GradAccum   int     `msgpack:"grad_accum,omitempty" json:"grad_accum,omitempty"`
	WeightDecay float64 `msgpack:"weight_decay,omitempty" json:"weight_decay,omitempty"`
	// MaxGradNorm clips the gradient norm; nil means the default 1, 0 off.
	MaxGradNorm *float64 `msgpack:"max_grad_norm,omitempty" json:"max_grad_norm,omitempty"`
	Seed        uint64   `msgpack:"seed,omitempty" json:"seed,omitempty"`
	EvalEvery   int      `msgpack:"eval_every,omitempty" json:"eval_every,omitempty"`
	// ProgressEvery sends a Progress every so many steps (0: every step).
	ProgressEvery int `msgpack:"progress_every,omitempty" json:"progress_every,omitempty"`
}

// Progress is one training event sent to the host during OpTrain: a
// start before the first step, the eval of the untrained adapter at step 0
// (with eval data), every step (or every ProgressEvery-th) and its evals,
// and done.
type Progress struct {
	Kind       string  `msgpack:"kind" json:"kind"` // "start", "step", "eval" or "done"
	Step       int     `msgpack:"step" json:"step"`
	TotalSteps int     `msgpack:"total_steps" json:"total_steps"`
	Loss       float64 `msgpack:"loss,omitempty" json:"loss,omitempty"`
	EvalLoss   float64 `msgpack:"eval_loss,omitempty" json:"eval_loss,omitempty"`
	LR         float64 `msgpack:"lr,omitempty" json:"lr,omitempty"`
	GradNorm   float64 `msgpack:"grad_norm,omitempty" json:"grad_norm,omitempty"`
	Tokens     int     `msgpack:"tokens,omitempty" json:"tokens,omitempty"`
}

// TrainResult summarizes a run. The trained adapter stays loaded and
// active under Adapter.Name.
type TrainResult struct {
	Adapter    AdapterInfo `msgpack:"adapter" json:"adapter"`
	Steps      int         `msgpack:"steps" json:"steps"`
	TotalSteps int         `msgpack:"total_steps,omitempty" json:"total_steps,omitempty"` // the run's length
	Loss       float64     `msgpack:"loss" json:"loss"`                                   // last step's training loss
	// Losses holds every step's training loss.
	Losses []float64 `msgpack:"losses" json:"losses"`
	// EvalBefore and EvalAfter are the eval loss before the first and
	// after the last step: nil without EvalData, and EvalAfter nil for a
	// run that did not finish.
	EvalBefore *float64 `msgpack:"eval_before,omitempty" json:"eval_before,omitempty"`
	EvalAfter  *float64 `msgpack:"eval_after,omitempty" json:"eval_after,omitempty"`
	Tokens     int      `msgpack:"tokens" json:"tokens"`
	// Spec is the run as train.Run carried it out, defaults filled in,
	// without its records.
	Spec *train.Spec `msgpack:"spec,omitempty" json:"spec,omitempty"`
}

// ExportArgs asks for a loaded adapter's files; with Bundle, as one
// msgpack bundle (core/formats/bundle) instead.
type ExportArgs struct {
	Name   string `msgpack:"name" json:"name"`
	Bundle bool   `msgpack:"bundle,omitempty" json:"bundle,omitempty"`
}

// ExportResult holds the adapter in PEFT's format, as files or a bundle.
type ExportResult struct {
	PeftType string            `msgpack:"peft_type" json:"peft_type"`
	Files    map[string][]byte `msgpack:"files,omitempty" json:"files,omitempty"`
	Bundle   []byte            `msgpack:"bundle,omitempty" json:"bundle,omitempty"`
}
