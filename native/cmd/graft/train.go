package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// Files graft train writes into --out beside the adapter.
const (
	metricsFile   = "metrics.jsonl"
	lossCurveFile = "loss_curve.svg"
	adapterName   = "default"
)

type trainFlags struct {
	model           *modelFlags
	data, eval, out string
	method          string
	r               int
	alpha, dropout  float64
	target          string
	rslora          bool
	steps           int
	epochs          float64
	batch, seqLen   int
	pack            bool
	lr              float64
	warmup          int
	schedule        string
	gradAccum       int
	weightDecay     float64
	maxGradNorm     float64
	seed            uint64
	saveEvery       int
	evalEvery       int
	resume          string
	init            string
	quiet           bool
	chatTemplate    string
	keepCheckpoints int
	checkpointing   bool

	virtualTokens    int
	promptInit       string
	initText         string
	prefixProjection bool
	encoderHidden    int
	feedforward      string
	dInitial         float64
	projectionSeed   int64
	reductionFactor  float64
	asJSON           bool
	dora             bool
	convertLoRA      bool
	nonLinearity     string
	set              map[string]bool // flags given on the command line

	// observe, when set, sees every training event (tests use it to stop a
	// run midway).
	observe func(train.Event)
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	f, err := parseTrainFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return f.run(ctx, stdout, stderr)
}

func parseTrainFlags(args []string, stderr io.Writer) (*trainFlags, error) {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	f := &trainFlags{model: addModelFlags(fs)}
	fs.StringVar(&f.data, "data", "", "training data `file` (.jsonl: text, prompt/completion, messages or Alpaca records; .txt)")
	fs.StringVar(&f.eval, "eval", "", "held-out data `file`, evaluated every --eval-every steps and at the end")
	fs.StringVar(&f.out, "out", "", "output `dir`: adapter, checkpoints, metrics.jsonl, loss_curve.svg")
	fs.StringVar(&f.method, "method", "lora", "PEFT method: "+methods)
	fs.IntVar(&f.r, "r", 8, "LoRA rank")
	fs.Float64Var(&f.alpha, "alpha", 16, "LoRA alpha (scaling alpha/r)")
	fs.Float64Var(&f.dropout, "dropout", 0, "LoRA dropout probability")
	fs.StringVar(&f.target, "target", "q_proj,v_proj", "target modules: comma-separated names, all-linear, or a regular expression matched against full module names")
	fs.BoolVar(&f.rslora, "rslora", false, "rank-stabilised scaling alpha/sqrt(r)")
	fs.StringVar(&f.init, "init", "", "LoRA initialisation: gaussian, pissa, pissa_niter_N, olora (default: kaiming-uniform A, zero B)")
	fs.BoolVar(&f.dora, "dora", false, "LoRA: weight-decomposed low-rank adaptation (use_dora)")
	fs.BoolVar(&f.convertLoRA, "convert-lora", false, "with --init pissa/olora: save a plain rank-2r LoRA for the original base, as PEFT's path_initial_model_for_weight_conversion does")
	fs.IntVar(&f.steps, "steps", 0, "optimizer steps (or use --epochs)")
	fs.Float64Var(&f.epochs, "epochs", 0, "passes over the data (or use --steps)")
	fs.IntVar(&f.batch, "batch", 4, "sequences per micro-batch")
	fs.IntVar(&f.seqLen, "seq-len", 256, "tokens per sequence")
	fs.BoolVar(&f.pack, "pack", false, "pack examples into full rows instead of padding each")
	fs.Float64Var(&f.lr, "lr", 2e-4, "peak learning rate")
	fs.IntVar(&f.warmup, "warmup", 0, "linear warm-up steps")
	fs.StringVar(&f.schedule, "schedule", "cosine", "learning-rate schedule after warm-up: cosine, linear, constant")
	fs.IntVar(&f.gradAccum, "grad-accum", 1, "micro-batches per optimizer step")
	fs.BoolVar(&f.checkpointing, "checkpointing", false, "activation checkpointing: keep only each layer's input and recompute the layer before its backward (far less memory, about a third more compute, the same gradients)")
	fs.Float64Var(&f.weightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	fs.Float64Var(&f.maxGradNorm, "max-grad-norm", 1, "clip gradients to this global norm; 0 disables")
	fs.Uint64Var(&f.seed, "seed", 0, "seed for initialisation, data order and dropout")
	fs.IntVar(&f.saveEvery, "save-every", 0, "write a checkpoint every N steps (0: only at the end)")
	fs.IntVar(&f.evalEvery, "eval-every", 0, "evaluate every N steps (0: only at the end)")
	fs.IntVar(&f.keepCheckpoints, "keep-checkpoints", 2, "newest checkpoints to keep; 0 keeps all")
	fs.StringVar(&f.resume, "resume", "", "continue from a checkpoint `dir` (or an --out dir: its newest checkpoint)")
	fs.StringVar(&f.chatTemplate, "chat-template", "", "template for {\"messages\"} records: chatml, llama2, simple")
	fs.BoolVar(&f.quiet, "quiet", false, "print only the summary")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as one JSON object (progress still goes to stderr)")
	fs.IntVar(&f.virtualTokens, "virtual-tokens", 20, "prompt/prefix tuning: number of virtual tokens")
	fs.StringVar(&f.promptInit, "prompt-init", "random", "prompt tuning: initialisation random, text or sample-vocab")
	fs.StringVar(&f.initText, "init-text", "", "prompt tuning: text whose embeddings initialise the prompt (implies --prompt-init text)")
	fs.BoolVar(&f.prefixProjection, "prefix-projection", false, "prefix tuning: train through PEFT's MLP reparameterisation")
	fs.IntVar(&f.encoderHidden, "encoder-hidden", 0, "prefix tuning: hidden size of the projection MLP (0: the key/value width)")
	fs.StringVar(&f.feedforward, "feedforward", "down_proj", "ia3: modules whose input (not output) is scaled")
	fs.Float64Var(&f.dInitial, "d-initial", 0.1, "vera: initial value of lambda_d")
	fs.Int64Var(&f.projectionSeed, "projection-seed", 0, "vera: projection_prng_key for the shared random projections")
	fs.Float64Var(&f.reductionFactor, "reduction-factor", 16, "houlsby/pfeiffer: hidden size divided by the bottleneck width")
	fs.StringVar(&f.nonLinearity, "non-linearity", "", "houlsby/pfeiffer: swish, relu, gelu, gelu_new, tanh, sigmoid, linear (default: swish for houlsby, relu for pfeiffer)")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usagef("unexpected arguments %q", pos)
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, f.check()
}

func (f *trainFlags) check() error {
	switch {
	case f.model.path == "":
		return usagef("--model is required")
	case f.data == "":
		return usagef("--data is required")
	case f.out == "":
		return usagef("--out is required")
	case (f.steps > 0) == (f.epochs > 0):
		return usagef("give exactly one of --steps N or --epochs E")
	case f.steps < 0 || f.epochs < 0:
		return usagef("--steps and --epochs must be positive")
	case f.batch < 1:
		return usagef("--batch %d must be at least 1", f.batch)
	case f.seqLen < 2:
		return usagef("--seq-len %d must be at least 2", f.seqLen)
	}
	return nil
}

// loraConfig turns the flags into PEFT's LoraConfig.
func (f *trainFlags) loraConfig() peft.LoraConfig {
	cfg := peft.LoraConfig{
		R: f.r, LoraAlpha: f.alpha, LoraDropout: f.dropout, UseRSLoRA: f.rslora,
		InitLoraWeights: peft.LoraInit(f.init), UseDoRA: f.dora,
	}
	cfg.TargetModules = parseModules(f.target)
	cfg.BaseModelNameOrPath = f.model.path
	return cfg
}

// parseModules reads a target list as PEFT's target_modules: all-linear, a
// regular expression (full match), or comma-separated names.
func parseModules(s string) peft.Modules {
	switch t := strings.TrimSpace(s); {
	case t == peft.AllLinear:
		return peft.TargetAllLinear()
	case strings.ContainsAny(t, `.*+?()[]|\^$`):
		return peft.TargetPattern(t)
	default:
		var names []string
		for _, n := range strings.Split(t, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		return peft.TargetNames(names...)
	}
}

// veraConfig turns the flags into PEFT's VeraConfig; --r defaults to
// PEFT's 256 for VeRA.
func (f *trainFlags) veraConfig() peft.VeraConfig {
	cfg := peft.DefaultVeraConfig()
	if f.set["r"] {
		cfg.R = f.r
	}
	if f.set["target"] {
		cfg.TargetModules = parseModules(f.target)
	}
	cfg.VeraDropout, cfg.DInitial, cfg.ProjectionPRNGKey = f.dropout, f.dInitial, f.projectionSeed
	cfg.BaseModelNameOrPath = f.model.path
	return cfg
}

// ia3Config turns the flags into PEFT's IA3Config (default targets
// k_proj, v_proj, down_proj).
func (f *trainFlags) ia3Config() peft.IA3Config {
	cfg := peft.DefaultIA3Config()
	if f.set["target"] {
		cfg.TargetModules = parseModules(f.target)
	}
	if f.set["feedforward"] || f.set["target"] {
		cfg.FeedforwardModules = parseModules(f.feedforward)
	}
	cfg.BaseModelNameOrPath = f.model.path
	return cfg
}

func (f *trainFlags) promptTuningConfig() peft.PromptTuningConfig {
	var cfg peft.PromptTuningConfig
	cfg.NumVirtualTokens = f.virtualTokens
	cfg.BaseModelNameOrPath = f.model.path
	cfg.PromptTuningInit = strings.ToUpper(strings.ReplaceAll(f.promptInit, "-", "_"))
	if f.initText != "" {
		cfg.PromptTuningInit, cfg.PromptTuningInitText = peft.PromptInitText, f.initText
	}
	return cfg
}

func (f *trainFlags) bottleneckConfig() peft.BottleneckConfig {
	return peft.BottleneckConfig{Kind: f.method, ReductionFactor: f.reductionFactor, NonLinearity: f.nonLinearity,
		Dropout: f.dropout, ModelName: f.model.path}
}

func (f *trainFlags) prefixTuningConfig() peft.PrefixTuningConfig {
	var cfg peft.PrefixTuningConfig
	cfg.NumVirtualTokens = f.virtualTokens
	cfg.BaseModelNameOrPath = f.model.path
	cfg.PrefixProjection, cfg.EncoderHiddenSize = f.prefixProjection, f.encoderHidden
	return cfg
}

func (f *trainFlags) run(ctx context.Context, stdout, stderr io.Writer) error {
	if err := f.validateMethod(); err != nil {
		return usageError{err}
	}
	m, err := f.model.load()
	if err != nil {
		return err
	}
	defer m.Free()
	if m.Tokenizer == nil {
		return fmt.Errorf("%s has no tokenizer", f.model.path)
	}
	opt := data.DefaultOptions()
	opt.ChatTemplate = f.chatTemplate
	opt.TextSeqLen = f.seqLen + 1
	trainEx, err := data.Load(f.data, m.Tokenizer, opt)
	if err != nil {
		return err
	}
	loader, err := data.NewLoader(trainEx, data.LoaderOptions{Batch: f.batch, SeqLen: f.seqLen, Pack: f.pack, Shuffle: true, PadID: padID(m)})
	if err != nil {
		return fmt.Errorf("%s: %w", f.data, err)
	}
	var evalBatches []data.Batch
	if f.eval != "" {
		evalEx, err := data.Load(f.eval, m.Tokenizer, opt)
		if err != nil {
			return err
		}
		el, err := data.NewLoader(evalEx, data.LoaderOptions{Batch: f.batch, SeqLen: f.seqLen, Pack: f.pack, PadID: padID(m)})
		if err != nil {
			return fmt.Errorf("%s: %w", f.eval, err)
		}
		evalBatches = train.EvalBatches(el)
	}

	adapter, err := f.newAdapter(m, rand.New(rand.NewPCG(f.seed, f.seed^0x5eed)))
	if err != nil {
		return err
	}
	defer adapter.Unload()
	if f.checkpointing && f.dropout > 0 {
		if err := replaysDropout(m); err != nil {
			return usagef("--checkpointing with --dropout %g: %v", f.dropout, err)
		}
	}
	m.Checkpointing = f.checkpointing
	params := adapter.Params()
	obj := &train.LM{Model: m, Trainable: params, Mode: adapter.SetTraining}

	tc := train.DefaultConfig()
	tc.Steps, tc.Epochs, tc.LR, tc.Warmup, tc.Schedule = f.steps, f.epochs, f.lr, f.warmup, f.schedule
	tc.GradAccum, tc.WeightDecay, tc.MaxGradNorm, tc.Seed = f.gradAccum, f.weightDecay, f.maxGradNorm, f.seed
	tc.EvalEvery, tc.SaveEvery, tc.KeepCheckpoints = f.evalEvery, f.saveEvery, f.keepCheckpoints
	tc.CheckpointDir = f.out
	if err := tc.Validate(); err != nil {
		return usageError{err}
	}
	tr, err := train.New(obj, m.Backend, train.LoaderSource(loader), evalBatches, tc)
	if err != nil {
		return err
	}
	// Each checkpoint also holds the adapter in PEFT's format, so any
	// checkpoint directory can be used with --adapter directly.
	tr.OnSave = func(dir string) error { return peft.Save(adapter, dir) }
	if f.resume != "" {
		dir, err := resolveCheckpoint(f.resume)
		if err != nil {
			return err
		}
		if err := tr.Resume(dir); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "resumed from %s at step %d of %d\n", dir, tr.Step(), tr.TotalSteps())
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}

	// metrics.jsonl is appended to on resume, so the file covers the run.
	mflags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if f.resume != "" {
		mflags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	mfile, err := os.OpenFile(filepath.Join(f.out, metricsFile), mflags, 0o644)
	if err != nil {
		return err
	}
	defer mfile.Close()
	writeMetric, metricsErr := train.MetricsWriter(mfile)
	trainable := int64(0)
	for _, p := range params {
		trainable += p.Value.Shape().Numel()
	}
	total := m.Config.NumParams()
	fmt.Fprintf(stderr, "%s: %d trainable parameters (%.3f%% of %d); %d examples, %d steps on %s\n",
		f.describe(), trainable, 100*float64(trainable)/float64(total), total, len(trainEx), tr.TotalSteps(), m.Backend.Name())

	progress := newProgress(stderr, f.quiet)
	var events []train.Event
	onEvent := func(e train.Event) {
		writeMetric(e)
		events = append(events, e)
		progress.event(e)
		if f.observe != nil {
			f.observe(e)
		}
	}
	// The held-out loss before any training is the baseline the curve and
	// the summary compare against.
	before := math.NaN()
	if len(evalBatches) > 0 && tr.Step() == 0 {
		if before, err = tr.Evaluate(); err != nil {
			return fmt.Errorf("%s: %w", f.eval, err)
		}
		onEvent(train.Event{Kind: train.EventEval, Step: 0, TotalSteps: tr.TotalSteps(), EvalLoss: before})
	}
	res, fitErr := tr.Fit(ctx, onEvent)
	progress.done()
	if err := metricsErr(); err != nil && fitErr == nil {
		fitErr = fmt.Errorf("%s: %w", metricsFile, err)
	}
	if err := writeLossCurve(filepath.Join(f.out, lossCurveFile), events); err != nil && fitErr == nil {
		fitErr = err
	}
	if fitErr != nil {
		return fitErr
	}
	if err := peft.Save(adapter, f.out); err != nil {
		return err
	}
	if f.asJSON {
		out := trainSummary{Method: f.method, Steps: res.Steps, Loss: res.Loss, TrainableParams: trainable,
			TotalParams: total, ElapsedS: res.Elapsed.Seconds(), Tokens: res.Tokens, Out: f.out, Checkpointing: f.checkpointing}
		if res.Evaluated {
			out.EvalLoss = &res.EvalLoss
		}
		if !math.IsNaN(before) {
			out.EvalLossBefore = &before
		}
		return writeJSON(stdout, out)
	}
	summary := fmt.Sprintf("trained %d steps in %s: loss %.4f", res.Steps, res.Elapsed.Round(time.Millisecond), res.Loss)
	if res.Evaluated {
		summary += fmt.Sprintf(", eval loss %.4f", res.EvalLoss)
		if !math.IsNaN(before) {
			summary += fmt.Sprintf(" (from %.4f, %+.1f%%)", before, 100*(res.EvalLoss-before)/before)
		}
	}
	fmt.Fprintf(stdout, "%s; adapter saved to %s\n", summary, f.out)
	return nil
}

// methods lists the --method names graft train accepts.
const methods = "lora, vera, ia3, prompt-tuning, prefix-tuning, houlsby, pfeiffer"

// newAdapter creates the adapter --method asks for.
func (f *trainFlags) newAdapter(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
	switch f.method {
	case "lora":
		mg := peft.Attach(m)
		if err := mg.AddAdapter(adapterName, f.loraConfig(), rng); err != nil {
			return nil, err
		}
		a, err := mg.AsAdapter(adapterName)
		if err != nil || !f.convertLoRA {
			return a, err
		}
		return convertedLoRA{a, mg}, nil
	case "vera":
		return peft.NewVeRA(m, f.veraConfig(), rng)
	case "ia3":
		return peft.NewIA3(m, f.ia3Config())
	case "prompt-tuning":
		return peft.NewPromptTuning(m, f.promptTuningConfig(), rng)
	case "prefix-tuning":
		return peft.NewPrefixTuning(m, f.prefixTuningConfig(), rng)
	case "houlsby", "pfeiffer":
		return peft.NewBottleneck(m, f.bottleneckConfig(), rng)
	}
	return nil, usagef("--method %q: supported methods are: %s", f.method, methods)
}

// validateMethod checks the method's settings before the model loads, as
// far as they can be checked without it.
func (f *trainFlags) validateMethod() error {
	switch f.method {
	case "lora":
		cfg := f.loraConfig()
		if f.convertLoRA && !strings.HasPrefix(f.init, "pissa") && f.init != "olora" {
			return fmt.Errorf("--convert-lora applies to --init pissa, pissa_niter_N or olora")
		}
		return cfg.Validate()
	case "vera":
		cfg := f.veraConfig()
		return cfg.Validate()
	case "ia3":
		cfg := f.ia3Config()
		return cfg.Validate()
	case "houlsby", "pfeiffer":
		if !(f.reductionFactor >= 1) {
			return fmt.Errorf("--reduction-factor %g must be at least 1", f.reductionFactor)
		}
		return nil
	case "prompt-tuning", "prefix-tuning":
		if f.virtualTokens < 1 {
			return fmt.Errorf("--virtual-tokens %d must be at least 1", f.virtualTokens)
		}
		return nil
	}
	return fmt.Errorf("--method %q: supported methods are: %s", f.method, methods)
}

// describe summarizes the method's settings for the log.
func (f *trainFlags) describe() string {
	switch f.method {
	case "lora":
		name := "lora"
		if f.dora {
			name = "dora"
		}
		if f.init != "" {
			name += " (" + f.init + " init)"
		}
		return fmt.Sprintf("%s r=%d alpha=%g targets %s", name, f.r, f.alpha, f.target)
	case "vera":
		cfg := f.veraConfig()
		return fmt.Sprintf("vera r=%d", cfg.R)
	case "prompt-tuning", "prefix-tuning":
		return fmt.Sprintf("%s with %d virtual tokens", f.method, f.virtualTokens)
	case "houlsby", "pfeiffer":
		return fmt.Sprintf("%s adapters, reduction factor %g", f.method, f.reductionFactor)
	}
	return f.method
}

// convertedLoRA saves a PiSSA/OLoRA adapter as the equivalent plain LoRA
// against the original base weights.
type convertedLoRA struct {
	peft.Adapter
	mg *peft.Manager
}

func (c convertedLoRA) Files() (peft.Files, error) { return c.mg.FilesConverted(adapterName) }

// trainSummary is graft train --json's output.
type trainSummary struct {
	Method          string   `json:"method"`
	Steps           int      `json:"steps"`
	Loss            float64  `json:"loss"`
	EvalLoss        *float64 `json:"eval_loss,omitempty"`
	EvalLossBefore  *float64 `json:"eval_loss_before,omitempty"`
	TrainableParams int64    `json:"trainable_params"`
	TotalParams     int64    `json:"total_params"`
	Tokens          int      `json:"tokens"`
	ElapsedS        float64  `json:"elapsed_s"`
	Out             string   `json:"out"`
	Checkpointing   bool     `json:"checkpointing,omitempty"`
}

// padID is the token used to fill padded rows (their loss weight is 0).
func padID(m *model.Model) int32 {
	if eos := m.Tokenizer.EOS(); eos >= 0 {
		return eos
	}
	return 0
}

// resolveCheckpoint accepts a checkpoint directory or an output directory
// holding checkpoint-N directories (the newest is taken).
func resolveCheckpoint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, train.StateFile)); err == nil {
		return dir, nil
	}
	latest, err := train.LatestCheckpoint(dir)
	if err != nil {
		return "", fmt.Errorf("--resume %s: %w", dir, err)
	}
	return latest, nil
}

// writeLossCurve renders the run's losses as an SVG, atomically.
func writeLossCurve(path string, events []train.Event) error {
	var buf bytes.Buffer
	if err := train.PlotSVG(&buf, events); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
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
