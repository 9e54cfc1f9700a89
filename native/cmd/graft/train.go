package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

type trainFlags struct {
	model  *modelFlags
	spec   train.Spec // the run: flags over the --config file
	quiet  bool
	asJSON bool
	// config is the --config file; printConfig prints the effective Spec
	// instead of training.
	config      string
	printConfig bool

	// observe, when set, sees every training event (tests use it to stop a
	// run midway).
	observe func(train.Event)
}

func trainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train",
		Short: fmt.Sprintf("fine-tune an adapter with any of graft's %d PEFT methods and save it in PEFT's format", len(peft.Methods())),
		Long: "Fine-tune an adapter on a dataset and save it in Hugging Face PEFT's format (bottleneck\n" +
			"adapters in AdapterHub's), with metrics.jsonl, loss_curve.svg and optional checkpoints in --out.\n" +
			"The run is the flags, or a --config file (the keys --print-config prints) that flags override.\n" +
			"Every setting left out takes the method's default.",
		Example: `  # LoRA r=8 on the attention projections of the bundled model, evaluated every 50 steps
  graft train --model models/stories260K/stories260K.gguf --data examples/lora/data/train.jsonl \
    --eval examples/lora/data/eval.jsonl --r 8 --alpha 16 --target q_proj,k_proj,v_proj,o_proj \
    --steps 200 --batch 4 --seq-len 128 --pack --lr 5e-3 --eval-every 50 --out out/pip

  # prefix tuning for two epochs, checkpoints every 100 steps (continue later with --resume out/prefix)
  graft train --model M --data train.jsonl --method prefix-tuning --virtual-tokens 20 --epochs 2 \
    --save-every 100 --out out/prefix

  # a run declared in a file, one setting overridden; --print-config shows it without training
  graft train --config run.yaml --steps 50 --print-config`,
		Args: noArgs,
	}
	p := bindTrainFlags(cmd.Flags())
	setGroupNote(cmd, groupMethod, methodTable())
	setGroupOrder(cmd, groupModel, groupData, groupMethod, groupOptim, groupEval, groupOutput, groupConfig)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		f, err := p.parsed(stderr)
		if err != nil {
			return err
		}
		if f.printConfig {
			return f.print(stdout)
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		return f.run(ctx, stdout, stderr)
	}
	return cmd
}

// print writes the effective Spec, defaults filled in: as JSON with
// --json or a .json --config file, else as YAML.
func (f *trainFlags) print(stdout io.Writer) error {
	format := "yaml"
	if f.config != "" {
		format, _ = configFormat(f.config) // read already: the extension is known
	}
	if f.asJSON {
		format = "json"
	}
	return printSpec(stdout, f.spec.WithDefaults(), format)
}

// bindSpecFlags defines the flags that set fields of s. graft train binds
// them twice: once to read the command line, once over the --config file's
// Spec to replay the flags given (see parseTrainFlags).
func bindSpecFlags(fs *pflag.FlagSet, s *train.Spec) {
	fs.StringVar(&s.Data, "data", "", "training data `file` (.jsonl: text, prompt/completion, messages or Alpaca records; .json; .txt)")
	fs.StringVar(&s.Eval, "eval", "", "held-out data `file`, evaluated before training, every --eval-every steps and at the end")
	fs.StringVar(&s.Out, "out", "", "output `dir`: adapter, checkpoints, metrics.jsonl, loss_curve.svg")
	fs.StringVar(&s.Method, "method", "", "PEFT method (default "+train.DefaultMethod+"): "+strings.Join(peft.MethodNames(), ", ")+
		"; several joined by + train a mixed stack (lora+prefix-tuning, lora+ia3), each method flag applying to the methods that list it")
	fs.BoolVar(&s.ConvertLoRA, "convert-lora", false, "with --init pissa/olora: save a plain rank-2r LoRA for the original base, as PEFT's path_initial_model_for_weight_conversion does")
	fs.IntVar(&s.Steps, "steps", 0, "optimizer steps (or use --epochs)")
	fs.Float64Var(&s.Epochs, "epochs", 0, "passes over the data (or use --steps)")
	fs.IntVar(&s.Batch, "batch", 0, fmt.Sprintf("sequences per micro-batch (default %d)", train.DefaultBatch))
	fs.IntVar(&s.SeqLen, "seq-len", 0, fmt.Sprintf("tokens per sequence (default %d, at most the model's context less the virtual tokens)", train.DefaultSeqLen))
	fs.BoolVar(&s.Pack, "pack", false, "pack examples into full rows instead of padding each")
	fs.Float64Var(&s.LR, "lr", 0, "peak learning rate (default: the method's: "+methodLRs()+")")
	fs.IntVar(&s.Warmup, "warmup", 0, "linear warm-up steps")
	fs.StringVar(&s.Schedule, "schedule", "", "learning-rate schedule after warm-up: cosine (default), linear, constant")
	fs.IntVar(&s.GradAccum, "grad-accum", 0, "micro-batches per optimizer step (default 1)")
	fs.BoolVar(&s.Checkpointing, "checkpointing", false, "activation checkpointing: keep only each layer's input and recompute the layer before its backward (far less memory, about a third more compute, the same gradients)")
	fs.Float64Var(&s.WeightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	fs.Var(optFloat{&s.MaxGradNorm}, "max-grad-norm", fmt.Sprintf("clip gradients to this global norm; 0 disables (default %g)", train.DefaultMaxGradNorm))
	fs.Uint64Var(&s.Seed, "seed", 0, "seed for initialisation, data order and dropout")
	fs.IntVar(&s.SaveEvery, "save-every", 0, "write a checkpoint every N steps and at the end (0: no checkpoints)")
	fs.IntVar(&s.EvalEvery, "eval-every", 0, "evaluate every N steps (0: only at the end)")
	fs.Var(optInt{&s.KeepCheckpoints}, "keep-checkpoints", fmt.Sprintf("newest checkpoints to keep; 0 keeps all (default %d)", train.DefaultKeepCheckpoints))
	fs.StringVar(&s.Resume, "resume", "", "continue from a checkpoint `dir` (or an --out dir: its newest checkpoint)")
	fs.StringVar(&s.ChatTemplate, "chat-template", "", chatTemplateHelp)
	fs.Var(templateVars{&s.ChatTemplateVars}, "chat-template-var", chatTemplateVarHelp)
	bindSafetyFlags(fs, s)
	setGroup(fs, groupData, "data", "chat-template", "chat-template-var", "seq-len", "pack", "allow-invalid-utf8")
	setGroup(fs, groupMethod, "method", "convert-lora")
	setGroup(fs, groupOptim, "steps", "epochs", "batch", "grad-accum", "lr", "warmup", "schedule", "weight-decay", "max-grad-norm", "seed", "checkpointing")
	setGroup(fs, groupEval, "eval", "eval-every", "save-every", "keep-checkpoints", "resume", "force")
	setGroup(fs, groupOutput, "out", "overwrite")
}

// bindSafetyFlags defines the flags that let a run do what graft refuses
// by default: replace another run, resume with other settings, read data
// that is not UTF-8.
func bindSafetyFlags(fs *pflag.FlagSet, s *train.Spec) {
	fs.BoolVar(&s.Overwrite, "overwrite", false, "train into an --out dir that holds another run, removing its adapter and checkpoints first")
	fs.BoolVar(&s.Force, "force", false, "with --resume: continue even when the checkpoint's settings or data differ from this run's (each difference is printed)")
	fs.BoolVar(&s.AllowInvalidUTF8, "allow-invalid-utf8", false, "read data files with bytes that are not UTF-8 as U+FFFD, with a warning naming the lines (default: an error)")
}

// The headings of graft train's help.
const (
	groupModel  = "Model"
	groupData   = "Data"
	groupMethod = "Method and per-method flags (each method flag applies to the methods listed after it, with their defaults)"
	groupOptim  = "Optimisation"
	groupEval   = "Evaluation and checkpoints"
	groupOutput = "Output"
	groupConfig = "Run file"
)

// trainBounds are the ranges of graft train's numeric flags. --steps 0
// (--epochs 0) is allowed beside --epochs (--steps), to replace a
// --config file's length of the other kind.
func trainBounds(fs *pflag.FlagSet) []bound {
	steps, epochs := atLeast("steps", 1), positive("epochs")
	if fs.Changed("epochs") {
		steps = atLeast("steps", 0)
	}
	if fs.Changed("steps") {
		epochs = atLeast("epochs", 0)
	}
	return []bound{steps, epochs, positive("lr"), atLeast("batch", 1), atLeast("seq-len", 2),
		atLeast("grad-accum", 1), atLeast("warmup", 0), atLeast("weight-decay", 0), atLeast("max-grad-norm", 0),
		atLeast("save-every", 0), atLeast("eval-every", 0), atLeast("keep-checkpoints", 0),
		atLeast("r", 1), atLeast("virtual-tokens", 1), probability("dropout"), positive("reduction-factor"),
		atLeast("encoder-hidden", 0)}
}

// methodFlag is a flag that sets one adapter setting of the methods that
// list it in their peft.Method.Flags, under the config key they give.
type methodFlag struct {
	name  string
	kind  flagKind
	usage string
}

// flagKind is the type of a method flag's value.
type flagKind int

const (
	kindString flagKind = iota
	kindInt
	kindFloat
	kindBool
)

var methodFlags = []methodFlag{
	{"r", kindInt, "rank"},
	{"alpha", kindFloat, "LoRA alpha (scaling alpha/r)"},
	{"dropout", kindFloat, "dropout probability of the adapter's input"},
	{"target", kindString, "target modules: comma-separated names, all-linear, or a regular expression matched against full module names"},
	{"rslora", kindBool, "rank-stabilised scaling alpha/sqrt(r)"},
	{"init", kindString, "LoRA initialisation: gaussian, pissa, pissa_niter_N, olora (default: kaiming-uniform A, zero B)"},
	{"dora", kindBool, "weight-decomposed low-rank adaptation (use_dora)"},
	{"virtual-tokens", kindInt, "number of virtual tokens"},
	{"prompt-init", kindString, "initialisation of the prompt: random, text or sample-vocab"},
	{"init-text", kindString, "text whose embeddings initialise the prompt (implies --prompt-init text)"},
	{"prefix-projection", kindBool, "train through PEFT's MLP reparameterisation"},
	{"encoder-hidden", kindInt, "hidden size of the projection MLP (0: the key/value width)"},
	{"feedforward", kindString, "modules whose input (not output) is scaled"},
	{"d-initial", kindFloat, "initial value of lambda_d"},
	{"projection-seed", kindInt, "projection_prng_key for the shared random projections"},
	{"reduction-factor", kindFloat, "hidden size divided by the bottleneck width"},
	{"non-linearity", kindString, "activation: swish, relu, gelu, gelu_new, tanh, sigmoid, linear"},
}

// String names the kind in help: int, float, string.
func (k flagKind) String() string {
	switch k {
	case kindInt:
		return "int"
	case kindFloat:
		return "float"
	case kindBool:
		return "bool"
	}
	return "string"
}

// parse reads the flag's text as its kind.
func (k flagKind) parse(s string) (any, error) {
	var (
		v   any
		err error
	)
	switch k {
	case kindInt:
		v, err = strconv.ParseInt(s, 0, 64)
	case kindFloat:
		v, err = strconv.ParseFloat(s, 64)
	case kindBool:
		v, err = strconv.ParseBool(s)
	default:
		v = s
	}
	if ne := (*strconv.NumError)(nil); errors.As(err, &ne) {
		err = ne.Err
	}
	return v, err
}

// keyValues convert a flag's value by the config key it sets, whatever the
// method.
var keyValues = map[string]func(any) any{
	"target_modules":      modulesValue,
	"feedforward_modules": modulesValue,
	"exclude_modules":     modulesValue,
	// PEFT's names are upper case: RANDOM, TEXT, SAMPLE_VOCAB.
	"prompt_tuning_init": func(v any) any { return strings.ToUpper(strings.ReplaceAll(v.(string), "-", "_")) },
}

// modulesValue reads a target list as PEFT's target_modules: all-linear or
// a regular expression (full match) stay a string, comma-separated names
// become a list.
func modulesValue(v any) any {
	t := strings.TrimSpace(v.(string))
	if t == peft.AllLinear || strings.ContainsAny(t, `.*+?()[]|\^$`) {
		return t
	}
	names := []string{}
	for _, n := range strings.Split(t, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// methodFlagValue records a method flag's text; it is converted once the
// method is known.
type methodFlagValue struct {
	text   string
	isBool bool
	kind   string // the value's type, for help
}

func (v *methodFlagValue) String() string     { return v.text }
func (v *methodFlagValue) Set(s string) error { v.text = s; return nil }
func (v *methodFlagValue) Type() string {
	if v.isBool {
		return "bool"
	}
	return v.kind
}

// trainParser is graft train's flag set, bound: what the command line
// gives, before the --config file and the method are applied.
type trainParser struct {
	fs     *pflag.FlagSet
	f      *trainFlags
	values map[string]*methodFlagValue // the method flags' texts
}

// bindTrainFlags defines graft train's flags on fs.
func bindTrainFlags(fs *pflag.FlagSet) *trainParser {
	p := &trainParser{fs: fs, f: &trainFlags{model: addModelFlags(fs)}, values: map[string]*methodFlagValue{}}
	setGroup(fs, groupModel, "model", "device", "quantize", "double-quant")
	var cl train.Spec // the command line's values; parsed reads them back by flag name
	bindSpecFlags(fs, &cl)
	for _, mf := range methodFlags {
		v := &methodFlagValue{isBool: mf.kind == kindBool, kind: mf.kind.String()}
		p.values[mf.name] = v
		fs.Var(v, mf.name, mf.usage+methodFlagDefaults(mf.name))
		if v.isBool {
			fs.Lookup(mf.name).NoOptDefVal = "true"
		}
		setGroup(fs, groupMethod, mf.name)
	}
	f := p.f
	fs.BoolVar(&f.quiet, "quiet", false, "print only the summary")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as one JSON object (progress still goes to stderr); with --print-config, print JSON")
	setGroup(fs, groupOutput, "quiet", "json")
	fs.StringVar(&f.config, "config", "", "read the run from a `file` (.yaml, .yml or .json: the keys --print-config prints); flags given override it")
	fs.BoolVar(&f.printConfig, "print-config", false, "print the effective run, defaults filled in, as YAML (JSON with --json or a .json --config) and exit without training")
	setGroup(fs, groupConfig, "config", "print-config")
	return p
}

// parseTrainFlags reads a graft train command line (tests use it to hold
// the run before it starts).
func parseTrainFlags(args []string, stderr io.Writer) (*trainFlags, error) {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p := bindTrainFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected arguments %q", fs.Args())
	}
	return p.parsed(stderr)
}

// parsed turns the flags parsed into the run: the --config file's Spec
// with the flags given over it, and the method flags set as the method's
// config keys.
func (p *trainParser) parsed(stderr io.Writer) (*trainFlags, error) {
	fs, f := p.fs, p.f
	if err := checkBounds(fs, trainBounds(fs)...); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *pflag.Flag) { set[fl.Name] = true })

	// Replay the spec flags given over the --config file's Spec (bound
	// first: binding sets each field to its flag's default).
	var spec train.Spec
	replay := pflag.NewFlagSet("train", pflag.ContinueOnError)
	bindSpecFlags(replay, &spec)
	if f.config != "" {
		var err error
		if spec, err = readSpecFile(f.config); err != nil {
			return nil, usageError{err}
		}
	}
	for name := range set {
		if replay.Lookup(name) != nil {
			if err := replay.Set(name, fs.Lookup(name).Value.String()); err != nil {
				return nil, usagef("--%s: %v", name, err)
			}
		}
	}
	if set["model"] {
		spec.Model = f.model.path
	}
	f.model.path = spec.Model
	if err := applyMethodFlags(&spec, p.values, set, stderr); err != nil {
		return nil, err
	}
	f.spec = spec
	return f, f.check()
}

// applyMethodFlags sets the adapter settings of the method flags given,
// under the config keys the method's Flags name.
func applyMethodFlags(s *train.Spec, values map[string]*methodFlagValue, set map[string]bool, stderr io.Writer) error {
	var given []methodFlag
	for _, mf := range methodFlags {
		if set[mf.name] {
			given = append(given, mf)
		}
	}
	if len(given) == 0 {
		return nil
	}
	if len(s.Config) > 0 {
		return usagef("--%s: method flags do not apply to a whole adapter config", given[0].name)
	}
	if s.IsStack() {
		return applyStackFlags(s, given, values, stderr)
	}
	name := s.Method
	if name == "" {
		name = train.DefaultMethod
	}
	meth, err := peft.LookupMethod(name)
	if err != nil {
		return usageError{err}
	}
	opts := maps.Clone(s.Options)
	if opts == nil {
		opts = map[string]any{}
	}
	keys := map[string]bool{}
	for _, mf := range given {
		key, ok := meth.Flags[mf.name]
		if !ok {
			// Ignored, as graft always has, so that one command line can
			// try several methods; but said.
			fmt.Fprintf(stderr, "graft train: --%s does not apply to --method %s (its flags: %s); ignored\n", mf.name, meth.Name, flagList(meth))
			continue
		}
		v, err := mf.value(values[mf.name].text, key)
		if err != nil {
			return err
		}
		opts[key], keys[key] = v, true
	}
	impliedOptions(opts, keys)
	s.Options = opts
	return nil
}

// value parses the flag's text into the value of config key.
func (mf methodFlag) value(text, key string) (any, error) {
	v, err := mf.kind.parse(text)
	if err != nil {
		return nil, usagef("--%s %q: %v", mf.name, text, err)
	}
	if conv := keyValues[key]; conv != nil {
		v = conv(v)
	}
	return v, nil
}

// impliedOptions adds the settings that the keys set imply: a prompt's
// init text implies initialising from text.
func impliedOptions(opts map[string]any, keys map[string]bool) {
	if keys["prompt_tuning_init_text"] && !keys["prompt_tuning_init"] {
		opts["prompt_tuning_init"] = peft.PromptInitText
	}
}

// applyStackFlags is applyMethodFlags for a mixed stack (--method
// lora+prefix-tuning): each method flag sets its key in every part whose
// method lists the flag, and one that no part lists is ignored, as for a
// single method. The Spec's stack is then spelled out in Stack.
func applyStackFlags(s *train.Spec, given []methodFlag, values map[string]*methodFlagValue, stderr io.Writer) error {
	parts, err := s.StackParts()
	if err != nil {
		return usageError{err}
	}
	meths := make([]peft.Method, len(parts))
	keys := make([]map[string]bool, len(parts))
	var lists []string
	for i, p := range parts {
		if meths[i], err = peft.LookupMethod(p.Method); err != nil {
			return usageError{err}
		}
		parts[i].Options = maps.Clone(p.Options)
		if parts[i].Options == nil {
			parts[i].Options = map[string]any{}
		}
		keys[i] = map[string]bool{}
		lists = append(lists, meths[i].Name+": "+flagList(meths[i]))
	}
	for _, mf := range given {
		applied := false
		for i, meth := range meths {
			key, ok := meth.Flags[mf.name]
			if !ok {
				continue
			}
			v, err := mf.value(values[mf.name].text, key)
			if err != nil {
				return err
			}
			parts[i].Options[key], keys[i][key], applied = v, true, true
		}
		if !applied {
			fmt.Fprintf(stderr, "graft train: --%s applies to no method of --method %s (%s); ignored\n", mf.name, s.MethodName(), strings.Join(lists, "; "))
		}
	}
	for i := range parts {
		impliedOptions(parts[i].Options, keys[i])
	}
	s.Stack, s.Method, s.Options = parts, "", nil
	return nil
}

// flagList lists a method's flags for help and errors.
func flagList(meth peft.Method) string {
	var names []string
	for name := range meth.Flags {
		if name != "model" {
			names = append(names, "--"+name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// methodTable lists the registered methods for graft train's help: each
// one's summary, recommended learning rate and method flags.
func methodTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n  --method NAME (default %s; NAME+NAME+... trains a mixed stack):\n", train.DefaultMethod)
	for _, meth := range peft.Methods() {
		fmt.Fprintf(&b, "    %-15s %s\n", meth.Name, wrap(meth.Summary, helpWidth-20, strings.Repeat(" ", 20)))
		flags := flagList(meth)
		if flags == "" {
			flags = "none"
		}
		fmt.Fprintf(&b, "    %-15s %s\n", "", wrap(fmt.Sprintf("lr %g; flags: %s", meth.LR, flags), helpWidth-20, strings.Repeat(" ", 20)))
	}
	return b.String()
}

// methodFlagDefaults says which methods a method flag applies to, with
// each one's default, for the flag's help.
func methodFlagDefaults(name string) string {
	var parts []string
	for _, meth := range peft.Methods() {
		key, ok := meth.Flags[name]
		if !ok {
			continue
		}
		if d, ok := meth.Defaults[key]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", meth.Name, showValue(d)))
		} else {
			parts = append(parts, meth.Name)
		}
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// methodLRs lists the methods' recommended learning rates.
func methodLRs() string {
	var parts []string
	for _, meth := range peft.Methods() {
		parts = append(parts, fmt.Sprintf("%s %g", meth.Name, meth.LR))
	}
	return strings.Join(parts, ", ")
}

// showValue prints a setting for people: lists comma-separated.
func showValue(v any) string {
	switch v := v.(type) {
	case []string:
		return strings.Join(v, ",")
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// optFloat and optInt set optional (pointer) Spec fields.
type optFloat struct{ p **float64 }

func (o optFloat) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.FormatFloat(**o.p, 'g', -1, 64)
}

func (o optFloat) Type() string { return "float" }

func (o optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.Unwrap(err)
	}
	*o.p = &v
	return nil
}

type optInt struct{ p **int }

func (o optInt) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.Itoa(**o.p)
}

func (o optInt) Type() string { return "int" }

func (o optInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, strconv.IntSize)
	if err != nil {
		return errors.Unwrap(err)
	}
	n := int(v)
	*o.p = &n
	return nil
}

// check validates the run before the model loads.
func (f *trainFlags) check() error {
	switch {
	case f.printConfig:
	case f.spec.Model == "":
		return usagef("--model is required")
	case f.spec.Out == "":
		return usagef("--out is required")
	}
	if err := f.spec.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

func (f *trainFlags) run(ctx context.Context, stdout, stderr io.Writer) error {
	f.model.stderr = stderr
	m, err := f.model.load()
	if err != nil {
		return err
	}
	defer m.Free()
	effective := f.spec.WithDefaults()
	progress := newProgress(stderr, f.quiet)
	var rows string // how the data was cut into rows, which the eval losses depend on
	onEvent := func(e train.Event) {
		switch e.Kind {
		case train.EventWarning:
			progress.clear()
			fmt.Fprintf(stderr, "graft train: warning: %s\n", e.Message)
		case train.EventStart:
			if e.Path != "" {
				fmt.Fprintf(stderr, "resumed from %s at step %d of %d\n", e.Path, e.Step, e.TotalSteps)
			}
			rows = train.RowSettings(e.SeqLen, e.Pack)
			fmt.Fprintf(stderr, "%s: %d trainable parameters (%.3f%% of %d); %d examples, %d steps on %s; %s\n",
				describe(effective), e.TrainableParams, 100*float64(e.TrainableParams)/float64(e.TotalParams), e.TotalParams,
				e.Examples, e.TotalSteps, m.Backend.Name(), rows)
		default:
			progress.event(e)
		}
		if f.observe != nil {
			f.observe(e)
		}
	}
	res, err := train.Run(ctx, m, f.spec, onEvent)
	progress.done()
	if err != nil {
		if errors.Is(err, train.ErrInvalidSpec) {
			return usageError{err}
		}
		return err
	}
	s := res.Spec
	if f.asJSON {
		out := trainSummary{Method: s.MethodName(), Steps: res.Steps, Loss: res.Loss, TrainableParams: res.TrainableParams,
			TotalParams: res.TotalParams, ElapsedS: res.Elapsed.Seconds(), Tokens: res.Tokens, Out: s.Out, Checkpointing: s.Checkpointing,
			SeqLen: s.SeqLen, Pack: s.Pack}
		if res.Evaluated {
			out.EvalLoss = &res.EvalLoss
		}
		if !math.IsNaN(res.EvalBefore) {
			out.EvalLossBefore = &res.EvalBefore
		}
		return writeJSON(stdout, out)
	}
	summary := fmt.Sprintf("trained %d steps in %s: loss %.4f", res.Steps, res.Elapsed.Round(time.Millisecond), res.Loss)
	if res.Evaluated {
		summary += fmt.Sprintf(", eval loss %.4f", res.EvalLoss)
		if before := res.EvalBefore; !math.IsNaN(before) {
			summary += fmt.Sprintf(" (from %.4f, %+.1f%%)", before, 100*(res.EvalLoss-before)/before)
		}
		summary += " [" + rows + "]"
	}
	fmt.Fprintf(stdout, "%s; adapter saved to %s\n", summary, s.Out)
	return nil
}

// describe summarizes the method and the settings its flags set, for the
// log; a stack's parts joined by " + ".
func describe(s train.Spec) string {
	if s.IsStack() && len(s.Config) == 0 {
		var parts []string
		for _, p := range s.Stack {
			parts = append(parts, strings.TrimSpace(describe(train.Spec{Method: p.Method, Options: p.Options})))
		}
		return strings.Join(parts, " + ")
	}
	meth, err := peft.LookupMethod(s.Method)
	if err != nil || len(s.Config) > 0 {
		return s.Method + " (whole adapter config)"
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(meth.Flags)) {
		key := meth.Flags[name]
		if v, ok := s.Options[key]; ok && name != "model" {
			parts = append(parts, fmt.Sprintf("%s=%s", key, showValue(v)))
		}
	}
	return meth.Name + " " + strings.Join(parts, " ")
}

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
	// SeqLen and Pack are how the data was cut into rows; the eval
	// losses are measured under them (as graft eval --seq-len --pack).
	SeqLen int  `json:"seq_len"`
	Pack   bool `json:"pack"`
}
