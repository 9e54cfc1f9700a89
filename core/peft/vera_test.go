package peft

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// Helpers shared by the VeRA and IA³ tests.

const (
	vecTrainJSONL = "../../examples/lora/data/train.jsonl"
	vecEvalJSONL  = "../../examples/lora/data/eval.jsonl"
)

// vecSetParam overwrites a parameter with values drawn from seed, so tests
// do not run at the no-op initialisation.
func vecSetParam(t testing.TB, b backend.Backend, buf backend.Buffer, seed uint64, center, scale float64) {
	t.Helper()
	v := randVals(seeded(seed), int(buf.Shape().Numel()), scale)
	for i := range v {
		v[i] += float32(center)
	}
	if err := b.Write(buf, 0, v); err != nil {
		t.Fatal(err)
	}
}

// vecRandomize sets every parameter of a to center ± scale.
func vecRandomize(t testing.TB, b backend.Backend, a Adapter, center, scale float64) {
	t.Helper()
	for i, p := range a.Params() {
		vecSetParam(t, b, p.Value, uint64(100+i), center, scale)
	}
}

// vecLayerParams returns the parameters of a that belong to module lin.
func vecLayerParams(a Adapter, lin *model.Linear) []model.Param {
	var out []model.Param
	for _, p := range a.Params() {
		if strings.HasPrefix(p.Name, "base_model.model."+lin.Name+".") {
			out = append(out, p)
		}
	}
	return out
}

// vecGradCheck compares the analytic gradients of every parameter of a on
// lin, and of the input, with central differences of L = Σ dy ⊙ y in
// float64. reset is called before every forward pass (it fixes dropout
// masks).
func vecGradCheck(t *testing.T, m *model.Model, a Adapter, lin *model.Linear, reset func()) {
	t.Helper()
	b := m.Backend
	rows := 5
	if lin.Bias != nil {
		rows = 1 // the CPU backend's Add does not broadcast a bias row yet
	}
	x := randVals(seeded(11), rows*lin.In, 1)
	xBuf := loadF32(t, b, x, rows, lin.In)
	dy := randVals(seeded(13), rows*lin.Out, 1)
	dyBuf := loadF32(t, b, dy, rows, lin.Out)
	y := b.Zeros(rows, lin.Out)
	dx := b.Zeros(rows, lin.In)
	defer freeAll(b, xBuf, dyBuf, y, dx)
	forward := func() []float32 {
		reset()
		if err := b.Write(xBuf, 0, x); err != nil {
			t.Fatal(err)
		}
		lin.Forward(b, y, xBuf)
		return read(t, b, y)
	}
	loss := func() float64 {
		var l float64
		for i, v := range forward() {
			l += float64(dy[i]) * float64(v)
		}
		return l
	}
	params := vecLayerParams(a, lin)
	if len(params) == 0 {
		t.Fatalf("no parameters on %s", lin.Name)
	}
	for _, p := range params {
		if err := b.Write(p.Grad, 0, make([]float32, p.Grad.Shape().Numel())); err != nil {
			t.Fatal(err)
		}
	}
	forward()
	lin.Backward(b, dx, dyBuf, xBuf)

	const h = 1e-2
	check := func(what string, analytic, vals []float32, set func()) {
		t.Helper()
		var worst, scale float64
		for i := range vals {
			orig := vals[i]
			vals[i] = orig + h
			set()
			up := loss()
			vals[i] = orig - h
			set()
			down := loss()
			vals[i] = orig
			set()
			fd := (up - down) / (2 * h)
			worst = math.Max(worst, math.Abs(fd-float64(analytic[i])))
			scale = math.Max(scale, math.Abs(fd))
		}
		if scale == 0 || worst > 2e-3*scale {
			t.Errorf("%s: max |finite difference - analytic| = %g, scale %g", what, worst, scale)
		}
	}
	for _, p := range params {
		vals := read(t, b, p.Value)
		check(p.Name, read(t, b, p.Grad), vals, func() {
			if err := b.Write(p.Value, 0, vals); err != nil {
				t.Fatal(err)
			}
		})
	}
	check(lin.Name+" dx", read(t, b, dx), x, func() {})

	// Backward accumulates: a second pass doubles the parameter gradients.
	for _, p := range params {
		if err := b.Write(p.Grad, 0, make([]float32, p.Grad.Shape().Numel())); err != nil {
			t.Fatal(err)
		}
	}
	forward()
	lin.Backward(b, nil, dyBuf, xBuf)
	once := read(t, b, params[0].Grad)
	lin.Backward(b, nil, dyBuf, xBuf)
	twice := read(t, b, params[0].Grad)
	for i := range once {
		if math.Abs(float64(twice[i]-2*once[i])) > 1e-5*math.Abs(float64(once[i]))+1e-6 {
			t.Fatalf("%s[%d]: %g after two Backward calls, %g after one", params[0].Name, i, twice[i], once[i])
		}
	}
}

// vecTrainEval trains a's parameters on the demo data for a few steps and
// returns the held-out loss before and after.
func vecTrainEval(t *testing.T, m *model.Model, a Adapter, lr float64, steps int) (before, after float64) {
	t.Helper()
	load := func(path string, shuffle bool) *data.Loader {
		ex, err := data.Load(path, m.Tokenizer, data.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		l, err := data.NewLoader(ex, data.LoaderOptions{Batch: 2, SeqLen: 64, Pack: true, Shuffle: shuffle})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	return fit(t, m, a, load(vecTrainJSONL, true), load(vecEvalJSONL, false), FitArgs{LR: lr, Steps: steps, Warmup: 2, Seed: 7})
}

// vecTensorShapes lists the tensors of adapter_model.safetensors by name.
func vecTensorShapes(t *testing.T, files Files) (map[string][]int, map[string]string) {
	t.Helper()
	w := files[WeightsFileName]
	f, err := safetensors.Parse(bytes.NewReader(w), int64(len(w)), WeightsFileName)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for _, ti := range f.Tensors {
		out[ti.Name] = ti.Shape
	}
	return out, f.Metadata
}

// vecRoundTrip saves a, unloads it, checks the base is back bit for bit,
// loads the files through LoadAdapter and checks the logits are identical.
func vecRoundTrip(t *testing.T, m *model.Model, a Adapter, base []float32) Adapter {
	t.Helper()
	want := logits(t, m, storyIDs)
	if relDiff(want, base) < 1e-4 {
		t.Fatal("the adapter does not change the logits: the round trip would prove nothing")
	}
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := Save(a, dir); err != nil {
		t.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, storyIDs), base); d != 0 {
		t.Fatalf("after Unload the logits differ from the base by %g", d)
	}
	back, warnings, err := LoadAdapter(m, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings loading our own adapter: %q", warnings)
	}
	if back.PeftType() != a.PeftType() {
		t.Fatalf("loaded %s, saved %s", back.PeftType(), a.PeftType())
	}
	if d := relDiff(logits(t, m, storyIDs), want); d != 0 {
		t.Fatalf("logits after save and load differ by %g", d)
	}
	// Saving the loaded adapter gives the same bytes.
	f1, err := os.ReadFile(filepath.Join(dir, WeightsFileName))
	if err != nil {
		t.Fatal(err)
	}
	files, err := back.Files()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files[WeightsFileName], f1) {
		t.Error("saving the loaded adapter gives a different adapter_model.safetensors")
	}
	return back
}

// vecCheckMerge merges a and compares the logits with the unmerged ones, then
// unloads it and checks the base model is restored bit for bit.
func vecCheckMerge(t *testing.T, m *model.Model, a Adapter, base []float32) {
	t.Helper()
	want := logits(t, m, storyIDs)
	if relDiff(want, base) < 1e-4 {
		t.Fatal("the adapter does not change the logits")
	}
	if err := a.Merge(); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, storyIDs), want); d > 1e-5 {
		t.Errorf("merged logits differ from unmerged by %g (relative)", d)
	}
	if err := a.Merge(); err != nil { // merging twice changes nothing
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, storyIDs), want); d > 1e-5 {
		t.Errorf("merging twice: logits differ by %g", d)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, storyIDs), base); d != 0 {
		t.Errorf("after Unload of a merged adapter the logits differ from the base by %g", d)
	}
	for _, l := range candidates(m) {
		if len(l.Hooks()) > 0 {
			t.Errorf("%s still has a hook", l.Name)
		}
	}
	if err := a.Unload(); err == nil {
		t.Error("a second Unload succeeded")
	}
}

// vecCorrupt describes one damaged copy of an adapter's files and what the
// error must mention.
type vecCorrupt struct {
	name   string
	change func(t *testing.T, f Files)
	want   []string
}

func vecCheckCorrupt(t *testing.T, m *model.Model, good Files, cases []vecCorrupt) {
	t.Helper()
	base := logits(t, m, storyIDs)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := Files{}
			for k, v := range good {
				files[k] = bytes.Clone(v)
			}
			c.change(t, files)
			dir := filepath.Join(t.TempDir(), "bad")
			if err := WriteDir(dir, files); err != nil {
				t.Fatal(err)
			}
			a, _, err := LoadAdapter(m, Dir(dir))
			if err == nil {
				a.Unload()
				t.Fatal("loaded a damaged adapter")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, l := range candidates(m) {
				if len(l.Hooks()) > 0 {
					t.Fatalf("a failed load left a hook on %s", l.Name)
				}
			}
			if d := relDiff(logits(t, m, storyIDs), base); d != 0 {
				t.Fatalf("a failed load changed the model's logits by %g", d)
			}
		})
	}
}

// vecRewriteTensors re-encodes adapter_model.safetensors after edit changes
// the named values.
func vecRewriteTensors(t *testing.T, f Files, edit func(vals map[string]*namedValues) []namedValues) {
	t.Helper()
	w := f[WeightsFileName]
	sf, err := safetensors.Parse(bytes.NewReader(w), int64(len(w)), WeightsFileName)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]*namedValues{}
	var order []string
	for _, ti := range sf.Tensors {
		tt, err := sf.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := tt.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		vals[ti.Name] = &namedValues{ti.Name, ti.Shape, v}
		order = append(order, ti.Name)
	}
	extra := edit(vals)
	var list []namedValues
	for _, n := range order {
		if nv := vals[n]; nv != nil {
			list = append(list, *nv)
		}
	}
	list = append(list, extra...)
	// encodeAdapterFiles refuses non-finite values; write directly.
	var ts []*tensor.Tensor
	for _, nv := range list {
		tt, err := tensor.FromFloat32(nv.name, nv.shape, nv.vals)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tt)
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f[WeightsFileName] = buf.Bytes()
}

func vecSetConfigKey(t *testing.T, f Files, key, value string) {
	t.Helper()
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(f[ConfigFileName], &cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg[key]; !ok {
		t.Fatalf("config has no key %q", key)
	}
	cfg[key] = json.RawMessage(value)
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f[ConfigFileName] = data
}

func TestVeraForwardMatchesReference(t *testing.T) {
	m := tinyModel(t, 21)
	cfg := DefaultConfig[VeraConfig]()
	cfg.R = 6
	cfg.TargetModules = TargetNames("up_proj", "down_proj")
	a, err := NewVeRA(m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ad := a.(*veraAdapter)
	if ad.maxIn != m.Config.FFN || ad.maxOut != m.Config.FFN {
		t.Fatalf("projections sized %d, %d; want the largest in and out, %d", ad.maxIn, ad.maxOut, m.Config.FFN)
	}
	vecRandomize(t, m.Backend, a, 0, 1)
	b := m.Backend
	for _, lin := range []*model.Linear{m.Layers[0].Up, m.Layers[1].Down} {
		const rows = 3
		x := randVals(seeded(5), rows*lin.In, 1)
		xBuf := loadF32(t, b, x, rows, lin.In)
		y := b.Zeros(rows, lin.Out)
		lin.Forward(b, y, xBuf)
		got := read(t, b, y)
		freeAll(b, xBuf, y)

		w := read(t, b, lin.Weight)
		ps := vecLayerParams(a, lin)
		lb, ld := read(t, b, ps[0].Value), read(t, b, ps[1].Value)
		want := make([]float64, rows*lin.Out)
		for i := range rows {
			h := make([]float64, cfg.R)
			for j := range cfg.R {
				for k := range lin.In { // A[:, :in]
					h[j] += float64(ad.projA[j*ad.maxIn+k]) * float64(x[i*lin.In+k])
				}
				h[j] *= float64(ld[j])
			}
			for o := range lin.Out {
				var base, z float64
				for k := range lin.In {
					base += float64(x[i*lin.In+k]) * float64(w[o*lin.In+k])
				}
				for j := range cfg.R { // B[:out]
					z += float64(ad.projB[o*cfg.R+j]) * h[j]
				}
				want[i*lin.Out+o] = base + float64(lb[o])*z
			}
		}
		if d, s := maxDiff64(got, want); d > 1e-5*s {
			t.Errorf("%s: max diff %g (scale %g)", lin.Name, d, s)
		}
	}
}

func TestVeraInit(t *testing.T) {
	m := tinyModel(t, 22)
	base := logits(t, m, tinyIDs)
	cfg := DefaultConfig[VeraConfig]()
	cfg.R = 64
	cfg.TargetModules = TargetNames("q_proj", "v_proj", "up_proj")
	cfg.ProjectionPRNGKey = 42
	a, err := NewVeRA(m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), base); d != 0 {
		t.Errorf("a new adapter (lambda_b = 0) changes the logits by %g", d)
	}
	ad := a.(*veraAdapter)
	for _, p := range a.Params() {
		v := read(t, m.Backend, p.Value)
		want := float32(0)
		if strings.HasSuffix(p.Name, "vera_lambda_d") {
			want = 0.1
		}
		for _, x := range v {
			if x != want {
				t.Fatalf("%s starts with %g, want %g", p.Name, x, want)
			}
		}
	}
	// Kaiming-uniform with gain sqrt(2): U(-sqrt(6/fan_in), sqrt(6/fan_in)).
	for _, c := range []struct {
		what  string
		vals  []float32
		fanIn int
	}{{"vera_A", ad.projA, ad.maxIn}, {"vera_B", ad.projB, cfg.R}} {
		bound := math.Sqrt(6 / float64(c.fanIn))
		mean, std, maxAbs := stats(c.vals)
		if maxAbs > bound || maxAbs < 0.9*bound || math.Abs(mean) > 0.1*bound || math.Abs(std-bound/math.Sqrt(3)) > 0.1*bound {
			t.Errorf("%s: mean %g std %g max %g, want U(-%g, %g)", c.what, mean, std, maxAbs, bound, bound)
		}
	}
	// The projections depend only on the key and the sizes.
	a2, b2 := veraProjections(42, cfg.R, ad.maxIn, ad.maxOut)
	if !vecSameFloats(a2, ad.projA) || !vecSameFloats(b2, ad.projB) {
		t.Error("the projections are not a function of projection_prng_key")
	}
	a3, _ := veraProjections(43, cfg.R, ad.maxIn, ad.maxOut)
	if vecSameFloats(a3, ad.projA) {
		t.Error("different keys give the same projections")
	}
	// A second adapter on the same layers wraps the first (see layerstack.go).
	second, err := NewVeRA(m, cfg, nil)
	if err != nil {
		t.Fatalf("a second adapter on hooked layers: %v", err)
	}
	if err := second.Unload(); err != nil {
		t.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	// init_weights false: lambda_b = 1, lambda_d ~ N(0, 1) from rng.
	cfg.InitWeights = false
	if _, err := NewVeRA(m, cfg, nil); err == nil {
		t.Error("init_weights false without a random source accepted")
	}
	a, err = NewVeRA(m, cfg, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	ps := a.Params()
	if _, _, mx := stats(read(t, m.Backend, ps[0].Value)); mx != 1 {
		t.Errorf("init_weights false: lambda_b max %g, want all 1", mx)
	}
	if _, std, _ := stats(read(t, m.Backend, ps[1].Value)); std < 0.5 || std > 1.5 {
		t.Errorf("init_weights false: lambda_d std %g, want about 1", std)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
}

func vecSameFloats(a, b []float32) bool { return bytes.Equal(vecF32Bytes(a), vecF32Bytes(b)) }

func vecF32Bytes(v []float32) []byte {
	out := make([]byte, 0, 4*len(v))
	for _, x := range v {
		u := math.Float32bits(x)
		out = append(out, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return out
}

func TestVeraGradients(t *testing.T) {
	for _, c := range []struct {
		name     string
		dropout  float64
		training bool
	}{
		{"no dropout", 0, true},
		{"dropout inference", 0.3, false},
		{"dropout fixed mask", 0.3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := tinyModel(t, 23)
			cfg := DefaultConfig[VeraConfig]()
			cfg.R = 5
			cfg.VeraDropout = c.dropout
			cfg.TargetModules = TargetNames("q_proj", "up_proj", "down_proj")
			a, err := NewVeRA(m, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			vecRandomize(t, m.Backend, a, 0, 1)
			reset := func() {
				if err := a.SetTraining(c.training, seeded(99)); err != nil { // the same mask every pass
					t.Fatal(err)
				}
			}
			// q_proj: sliced A and B with RoPE-ordered rows; down_proj:
			// the whole A.
			for _, lin := range []*model.Linear{m.Layers[0].Q, m.Layers[1].Up, m.Layers[0].Down} {
				vecGradCheck(t, m, a, lin, reset)
			}
			if c.training && c.dropout > 0 && !a.(*veraAdapter).layers[0].dropped {
				t.Error("training with dropout did not apply it")
			}
		})
	}
}

func TestVeraGoldenConfig(t *testing.T) {
	const file = "testdata/vera_adapter_config.golden.json"
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig[VeraConfig]()
	cfg.R = 16
	cfg.TargetModules = TargetNames("v_proj", "q_proj")
	cfg.ProjectionPRNGKey = 7
	cfg.VeraDropout = 0.05
	cfg.LayersToTransform = []int{0, 2}
	cfg.LayersPattern = []string{"layers"}
	cfg.BaseModelNameOrPath = "stories260K"
	cfg.InferenceMode = true
	got, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	back, warnings, err := ParseConfig[VeraConfig](want)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("parse: %v %q", err, warnings)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	if again, _ := EncodeConfig(back); !bytes.Equal(again, want) {
		t.Errorf("parse and encode changed it:\n%s", again)
	}
	// Missing keys take PEFT's defaults; unknown keys are reported.
	min, warnings, err := ParseConfig[VeraConfig]([]byte(`{"peft_type": "VERA", "peft_version": "0.17.0", "shiny": 1, "fan_in_fan_out": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if min.R != 256 || !min.SaveProjection || min.DInitial != 0.1 || !min.InitWeights {
		t.Errorf("defaults: %+v", min)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "fan_in_fan_out") || !strings.Contains(warnings[1], "shiny") {
		t.Errorf("warnings %q", warnings)
	}
}

func TestVeraConfigErrors(t *testing.T) {
	ok := DefaultConfig[VeraConfig]()
	for _, c := range []struct {
		name string
		edit func(*VeraConfig)
		want string
	}{
		{"rank", func(c *VeraConfig) { c.R = 0 }, "r = 0"},
		{"no projections", func(c *VeraConfig) { c.SaveProjection = false }, "save_projection"},
		{"dropout", func(c *VeraConfig) { c.VeraDropout = 1 }, "vera_dropout"},
		{"d_initial", func(c *VeraConfig) { c.DInitial = math.NaN() }, "d_initial"},
		{"bias", func(c *VeraConfig) { c.Bias = "vera_only" }, "bias"},
		{"fan_in_fan_out", func(c *VeraConfig) { c.FanInFanOut = true }, "fan_in_fan_out"},
		{"modules_to_save", func(c *VeraConfig) { c.ModulesToSave = []string{"lm_head"} }, "modules_to_save"},
		{"layers_pattern alone", func(c *VeraConfig) { c.LayersPattern = []string{"layers"} }, "layers_to_transform"},
		{"peft_type", func(c *VeraConfig) { c.PeftType = "LORA" }, "peft_type"},
		{"regexp", func(c *VeraConfig) { c.TargetModules = TargetPattern(`(`) }, "target_modules"},
		{"no exclude_modules in VeraConfig", func(c *VeraConfig) { c.ExcludeModules = TargetNames("q_proj") }, "vera config: exclude_modules is not an option"},
	} {
		cfg := ok
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	m := tinyModel(t, 24)
	cfg := ok
	cfg.DInitial = 0
	if _, err := NewVeRA(m, cfg, nil); err == nil || !strings.Contains(err.Error(), "d_initial") {
		t.Errorf("d_initial 0: %v", err)
	}
	cfg = ok
	cfg.TargetModules = TargetNames("nothing_here")
	if _, err := NewVeRA(m, cfg, nil); err == nil || !strings.Contains(err.Error(), "matched none") {
		t.Errorf("no match: %v", err)
	}
	if err := (&VeraConfig{}).UnmarshalJSON([]byte(`{"peft_type": "VERA", "r": 2.5}`)); err == nil || !strings.Contains(err.Error(), "r:") {
		t.Errorf("fractional r: %v", err)
	}
	if err := (&VeraConfig{}).UnmarshalJSON([]byte(`{"r": 8}`)); err == nil || !strings.Contains(err.Error(), "peft_type") {
		t.Errorf("missing peft_type: %v", err)
	}
}

func newStoriesVeRA(t *testing.T, m *model.Model, targets ...string) Adapter {
	t.Helper()
	cfg := DefaultConfig[VeraConfig]()
	cfg.R = 16
	cfg.TargetModules = TargetNames(targets...)
	a, err := NewVeRA(m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	vecRandomize(t, m.Backend, a, 0, 0.5)
	return a
}

func TestVeraSaveLoad(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	a := newStoriesVeRA(t, m, "q_proj", "k_proj", "v_proj", "up_proj")
	files, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	shapes, meta := vecTensorShapes(t, files)
	if meta["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", meta)
	}
	c := m.Config
	want := map[string][]int{
		"base_model.vera_A": {16, c.Dim},
		"base_model.vera_B": {c.FFN, 16},
		"base_model.model.model.layers.0.self_attn.k_proj.vera_lambda_b": {c.KVDim()},
		"base_model.model.model.layers.0.self_attn.k_proj.vera_lambda_d": {16},
		"base_model.model.model.layers.0.mlp.up_proj.vera_lambda_b":      {c.FFN},
	}
	for name, shape := range want {
		if got, ok := shapes[name]; !ok || !vecSameInts(got, shape) {
			t.Errorf("tensor %s: shape %v (present %v), want %v", name, got, ok, shape)
		}
	}
	if n := 2 + 2*4*c.Layers; len(shapes) != n {
		t.Errorf("%d tensors, want %d", len(shapes), n)
	}
	back := vecRoundTrip(t, m, a, base)
	if err := back.Unload(); err != nil {
		t.Fatal(err)
	}
}

func vecSameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestVeraOnHFOrderModel applies an adapter saved from the GGUF (Meta
// order) model to the same weights in Hugging Face order: the logits must
// agree, so the saved vectors are in Hugging Face's order.
func TestVeraOnHFOrderModel(t *testing.T) {
	gg := loadModel(t, storiesGGUF)
	hf := loadModel(t, storiesGGUF)
	toHFOrder(t, hf)
	a := newStoriesVeRA(t, gg, "q_proj", "k_proj", "v_proj")
	want := logits(t, gg, storyIDs)
	files, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := LoadAdapter(hf, InMemory("mem", files))
	if err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, hf, storyIDs), want); d > 1e-5 {
		t.Errorf("the adapter on the HF-order model gives logits %g away from the GGUF model's", d)
	}
	again, err := back.Files()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again[WeightsFileName], files[WeightsFileName]) {
		t.Error("saving from the HF-order model gives different tensors")
	}
}

func TestVeraMerge(t *testing.T) {
	for _, c := range []struct {
		name, path string
		targets    []string
	}{
		{"f32", storiesGGUF, []string{"q_proj", "v_proj", "o_proj", "down_proj"}},
		{"q8_0", storiesQ8, []string{"q_proj", "k_proj", "up_proj"}},
		{"tied head", storiesGGUF, []string{"v_proj", "lm_head"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := loadModel(t, c.path)
			base := logits(t, m, storyIDs)
			vecCheckMerge(t, m, newStoriesVeRA(t, m, c.targets...), base)
		})
	}
}

func TestVeraLoadErrors(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	a := newStoriesVeRA(t, m, "q_proj", "v_proj")
	good, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	const lb0 = "base_model.model.model.layers.0.self_attn.q_proj.vera_lambda_b"
	vecCheckCorrupt(t, m, good, []vecCorrupt{
		{"truncated weights", func(t *testing.T, f Files) {
			f[WeightsFileName] = f[WeightsFileName][:len(f[WeightsFileName])/2]
		}, []string{WeightsFileName}},
		{"missing projection", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues { delete(v, veraAKey); return nil })
		}, []string{WeightsFileName, veraAKey, "missing"}},
		{"projection shape", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues {
				p := v[veraBKey]
				p.shape, p.vals = []int{p.shape[0] - 1, p.shape[1]}, p.vals[p.shape[1]:]
				return nil
			})
		}, []string{WeightsFileName, veraBKey, "shape"}},
		{"rank mismatch", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "r", "8") },
			[]string{WeightsFileName, "vera_lambda_d", "shape"}},
		{"NaN", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues {
				v[lb0].vals[3] = float32(math.NaN())
				return nil
			})
		}, []string{WeightsFileName, lb0, "NaN"}},
		{"extra tensor", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues {
				return []namedValues{{"base_model.model.model.layers.0.self_attn.k_proj.vera_lambda_b", []int{4}, make([]float32, 4)}}
			})
		}, []string{WeightsFileName, "k_proj", "not selected"}},
		{"other targets", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "target_modules", `["q_proj", "k_proj", "v_proj"]`) },
			[]string{WeightsFileName, "k_proj", "missing"}},
		{"no projections", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "save_projection", "false") },
			[]string{ConfigFileName, "save_projection"}},
		{"bad json", func(t *testing.T, f Files) { f[ConfigFileName] = f[ConfigFileName][:20] },
			[]string{ConfigFileName, "JSON"}},
		{"no weights", func(t *testing.T, f Files) { delete(f, WeightsFileName) },
			[]string{"bad", WeightsFileName}},
	})
}

func TestVeraTrainingLowersEvalLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 30 steps")
	}
	m := loadModel(t, storiesGGUF)
	cfg := DefaultConfig[VeraConfig]()
	cfg.R = 32
	cfg.TargetModules = TargetNames("q_proj", "v_proj", "o_proj", "down_proj")
	a, err := NewVeRA(m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, after := vecTrainEval(t, m, a, 2e-2, 30)
	t.Logf("eval loss %.4f -> %.4f", before, after)
	if !(after < before-0.01) {
		t.Errorf("eval loss %g -> %g: training did not lower it", before, after)
	}
}
