package peft

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/model"
)

// stackPartConfigs are the adapter_config.json documents the stack tests
// build their parts from, by --method name.
var stackPartConfigs = map[string]string{
	"lora":          `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "down_proj"]}`,
	"ia3":           `{"peft_type": "IA3", "target_modules": ["k_proj", "v_proj", "down_proj"], "feedforward_modules": ["down_proj"]}`,
	"prefix-tuning": `{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 6}`,
}

// newStackOf attaches a new adapter of each method, in order, through the
// registry, and stacks them.
func newStackOf(t *testing.T, m *model.Model, methods ...string) *Stack {
	t.Helper()
	rng := seeded(5)
	var parts []Adapter
	for _, name := range methods {
		meth, err := LookupMethod(name)
		if err != nil {
			t.Fatal(err)
		}
		a, err := meth.New(m, []byte(stackPartConfigs[name]), rng)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		parts = append(parts, a)
	}
	s, err := NewStack(parts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gradNorms returns the sum of squared gradients of each part.
func gradNorms(t *testing.T, m *model.Model, s *Stack) []float64 {
	t.Helper()
	var out []float64
	for _, p := range s.Parts() {
		var sum float64
		for _, prm := range p.Params() {
			for _, g := range read(t, m.Backend, prm.Grad) {
				sum += float64(g) * float64(g)
			}
		}
		out = append(out, sum)
	}
	return out
}

// assertBare checks that no adapter is left on m and that it computes
// the logits of the plain model.
func assertBare(t *testing.T, m *model.Model, base []float32, tol float64) {
	t.Helper()
	for _, lin := range append(m.Linears(), m.Output) {
		if len(lin.Hooks()) > 0 {
			t.Fatalf("%s still has %d hooks", lin.Name, len(lin.Hooks()))
		}
	}
	if m.Prefix != nil || m.Prompt != nil {
		t.Fatal("a prefix or prompt is still attached")
	}
	if d := relDiff(logits(t, m, storyIDs), base); d > tol {
		t.Fatalf("the logits differ from the plain model's by %g", d)
	}
}

// TestStackTrainSaveLoad trains mixed stacks on stories260K, saves them,
// loads them into a fresh model and checks the logits bit for bit, then
// merges (where every part can) and unloads.
func TestStackTrainSaveLoad(t *testing.T) {
	for _, methods := range [][]string{{"lora", "prefix-tuning"}, {"lora", "ia3"}, {"ia3", "lora"}} {
		name := strings.Join(methods, "+")
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, storiesGGUF)
			base := logits(t, m, storyIDs)
			s := newStackOf(t, m, methods...)

			// One pass: every part gets a gradient.
			tb := model.TokenBatch{B: 1, T: len(storyIDs) - 1, IDs: storyIDs[:len(storyIDs)-1], Targets: storyIDs[1:], Weights: make([]float32, len(storyIDs)-1)}
			for i := range tb.Weights {
				tb.Weights[i] = 1
			}
			if _, err := m.LossAndGrad(tb, 1); err != nil {
				t.Fatal(err)
			}
			for i, n := range gradNorms(t, m, s) {
				if !(n > 0) || math.IsInf(n, 0) {
					t.Errorf("part %d (%s): squared gradient norm %g", i+1, methods[i], n)
				}
			}
			initial := make([][]float32, 0)
			for _, p := range s.Params() {
				initial = append(initial, read(t, m.Backend, p.Value))
			}

			before, after := vecTrainEval(t, m, s, 1e-2, 20)
			t.Logf("%s: held-out loss %.4f -> %.4f after 20 steps", name, before, after)
			if !(after < before-0.05) {
				t.Errorf("held-out loss %.4f -> %.4f: did not fall", before, after)
			}
			// Every part was trained.
			moved := make([]bool, len(methods))
			k := 0
			for i, p := range s.Parts() {
				for _, prm := range p.Params() {
					if !slices.Equal(read(t, m.Backend, prm.Value), initial[k]) {
						moved[i] = true
					}
					k++
				}
			}
			for i, ok := range moved {
				if !ok {
					t.Errorf("part %d (%s) did not change in training", i+1, methods[i])
				}
			}
			trained := logits(t, m, storyIDs)

			dir := filepath.Join(t.TempDir(), "stack")
			if err := Save(s, dir); err != nil {
				t.Fatal(err)
			}
			var man stackManifest
			raw, err := os.ReadFile(filepath.Join(dir, StackManifestFileName))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &man); err != nil {
				t.Fatal(err)
			}
			for i, part := range man.Parts {
				meth, _ := LookupMethod(methods[i])
				if part.PeftType != meth.PeftType || part.Subfolder != strings.ReplaceAll(strings.ToLower(meth.PeftType), "_", "-") {
					t.Errorf("manifest part %d = %+v, want %s", i+1, part, meth.PeftType)
				}
				// Each part is a plain adapter directory of its method.
				alone := loadModel(t, storiesGGUF)
				a, _, err := LoadAdapter(alone, Dir(filepath.Join(dir, part.Subfolder)))
				if err != nil {
					t.Fatalf("part %s alone: %v", part.Subfolder, err)
				}
				if a.PeftType() != meth.PeftType {
					t.Errorf("part %s loads as %s", part.Subfolder, a.PeftType())
				}
			}

			fresh := loadModel(t, storiesGGUF)
			loaded, warnings, err := LoadAdapter(fresh, Dir(dir))
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
			ls, ok := loaded.(*Stack)
			if !ok || len(ls.Parts()) != len(methods) || ls.PeftType() != PeftTypeMixed {
				t.Fatalf("loaded %T (%s), want a stack of %d", loaded, loaded.PeftType(), len(methods))
			}
			got := logits(t, fresh, storyIDs)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(trained[i]) {
					t.Fatalf("logit %d: loaded %v, trained %v", i, got[i], trained[i])
				}
			}

			err = ls.Merge()
			mergeable := !slices.Contains(methods, "prefix-tuning")
			if !mergeable {
				if !errors.Is(err, ErrNotMergeable) || !strings.Contains(err.Error(), "PREFIX_TUNING") {
					t.Errorf("Merge of a stack with prefix tuning: %v, want ErrNotMergeable naming the part", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if d := relDiff(logits(t, fresh, storyIDs), trained); d > 1e-5 {
				t.Errorf("after Merge (err %v) the logits differ by %g", err, d)
			}
			if err := ls.Unload(); err != nil {
				t.Fatal(err)
			}
			// Merging and unmerging each round the base weights in
			// float32, by more with the portable kernels (wasm) than with
			// the SIMD ones.
			assertBare(t, fresh, base, 1e-5)
			if err := ls.Unload(); err == nil {
				t.Error("a second Unload succeeded")
			}
		})
	}
}

// TestStackBadManifests loads damaged stack directories: each gives an
// error naming the file and the problem, and leaves the model bare.
func TestStackBadManifests(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	s := newStackOf(t, m, "lora", "prefix-tuning")
	good, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unload(); err != nil {
		t.Fatal(err)
	}
	manifest := func(js string) func(Files) {
		return func(f Files) { f[StackManifestFileName] = []byte(js) }
	}
	for _, c := range []struct {
		name   string
		change func(Files)
		want   []string
	}{
		{"missing subfolder", func(f Files) {
			delete(f, "lora/adapter_config.json")
			delete(f, "lora/adapter_model.safetensors")
		}, []string{"graft_stack.json: part 1", filepath.Join("lora", "adapter_config.json"), "no such file"}},
		{"missing part weights", func(f Files) { delete(f, "prefix-tuning/adapter_model.safetensors") },
			[]string{"graft_stack.json: part 2", filepath.Join("prefix-tuning", "adapter_model.safetensors")}},
		{"unknown part", manifest(`{"graft_stack_version": 1, "parts": [{"peft_type": "LORA", "subfolder": "lora"}, {"peft_type": "FANCY", "subfolder": "prefix-tuning"}]}`),
			[]string{"graft_stack.json: part 2: peft_type \"FANCY\" is not supported"}},
		{"wrong type", manifest(`{"graft_stack_version": 1, "parts": [{"peft_type": "PREFIX_TUNING", "subfolder": "lora"}, {"peft_type": "LORA", "subfolder": "prefix-tuning"}]}`),
			[]string{"graft_stack.json: part 1 is listed as PREFIX_TUNING, but", filepath.Join("lora", "adapter_config.json") + " holds a LORA adapter"}},
		{"version", manifest(`{"graft_stack_version": 2, "parts": [{"peft_type": "LORA", "subfolder": "lora"}]}`),
			[]string{"graft_stack.json: graft_stack_version 2 is not supported"}},
		{"unknown key", manifest(`{"graft_stack_version": 1, "order": "reversed", "parts": [{"peft_type": "LORA", "subfolder": "lora"}]}`),
			[]string{"graft_stack.json", `unknown field "order"`}},
		{"no parts", manifest(`{"graft_stack_version": 1, "parts": []}`), []string{"graft_stack.json: no parts"}},
		{"escaping subfolder", manifest(`{"graft_stack_version": 1, "parts": [{"peft_type": "LORA", "subfolder": "../lora"}]}`),
			[]string{"graft_stack.json: part 1: subfolder \"../lora\" is not a plain directory name"}},
		{"twice", manifest(`{"graft_stack_version": 1, "parts": [{"peft_type": "LORA", "subfolder": "lora"}, {"peft_type": "LORA", "subfolder": "lora"}]}`),
			[]string{"graft_stack.json: part 2: subfolder \"lora\" is listed twice"}},
		{"not json", manifest(`{"graft_stack_version": 1, "parts": [`), []string{"graft_stack.json", "unexpected EOF"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := Files{}
			for k, v := range good {
				files[k] = v
			}
			c.change(files)
			dir := filepath.Join(t.TempDir(), "bad")
			if err := WriteDir(dir, files); err != nil {
				t.Fatal(err)
			}
			a, _, err := LoadAdapter(m, Dir(dir))
			if err == nil {
				a.Unload()
				t.Fatal("loaded")
			}
			for _, w := range c.want {
				// Case-blind: the OS's wording differs ("No such file"
				// under GOOS=js and wasip1).
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory", err)
			}
			assertBare(t, m, base, 0)
		})
	}
}

func TestNewStackErrors(t *testing.T) {
	m := tinyModel(t, 91)
	mg := attach(t, m, LoraConfig{R: 2, LoraAlpha: 2}, 1)
	a, _ := mg.AsAdapter("a")
	if err := mg.AddAdapter("b", LoraConfig{R: 2, LoraAlpha: 2}, seeded(2)); err != nil {
		t.Fatal(err)
	}
	b, _ := mg.AsAdapter("b")
	s, err := NewStack(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		parts []Adapter
		want  string
	}{
		{nil, "no parts"},
		{[]Adapter{a, nil}, "part 2 is nil"},
		{[]Adapter{a, a}, "parts 1 and 2 are the same LORA adapter"},
		{[]Adapter{a, b}, "parts 1 (LORA) and 2 (LORA) both have a parameter base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"},
		{[]Adapter{s}, "part 1 is itself a stack"},
	} {
		if _, err := NewStack(c.parts...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewStack(%d parts): %v, want an error containing %q", len(c.parts), err, c.want)
		}
	}
}

// TestStackSaveReplacesKind saves a stack over a single adapter's
// directory and back: the directory always loads as what was saved last.
func TestStackSaveReplacesKind(t *testing.T) {
	m := tinyModel(t, 92)
	mg := attach(t, m, LoraConfig{R: 2, LoraAlpha: 2}, 1)
	lora, _ := mg.AsAdapter("a")
	cfg := DefaultConfig[IA3Config]()
	ia, err := NewIA3(m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStack(lora, ia)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	if err := Save(lora, dir); err != nil {
		t.Fatal(err)
	}
	if err := Save(s, dir); err != nil {
		t.Fatal(err)
	}
	if exists(ConfigFileName) || exists(WeightsFileName) || !exists(StackManifestFileName) || !exists("ia3/adapter_model.safetensors") {
		t.Error("saving a stack over a LoRA adapter left its files at the top")
	}
	if err := Save(ia, dir); err != nil {
		t.Fatal(err)
	}
	if exists(StackManifestFileName) || !exists(ConfigFileName) {
		t.Error("saving an adapter over a stack left the manifest")
	}
	fresh := tinyModel(t, 92)
	a, _, err := LoadAdapter(fresh, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if a.PeftType() != PeftTypeIA3 {
		t.Errorf("loads as %s, want IA3", a.PeftType())
	}
}

// TestStackBundle carries a stack through a msgpack bundle: ReadFiles of
// its directory gives its Files, and the bundle loads as the same stack.
func TestStackBundle(t *testing.T) {
	m := tinyModel(t, 94)
	mg := attach(t, m, LoraConfig{R: 2, LoraAlpha: 2, TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj")}}, 1)
	lora, _ := mg.AsAdapter("a")
	ia, err := NewIA3(m, DefaultConfig[IA3Config](), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStack(lora, ia)
	if err != nil {
		t.Fatal(err)
	}
	want := logits(t, m, tinyIDs)
	files, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "stack")
	if err := WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
	read, err := ReadFiles(Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != len(files) {
		t.Fatalf("ReadFiles gives %d files, the stack has %d", len(read), len(files))
	}
	for name, data := range files {
		if !slices.Equal(read[name], data) {
			t.Errorf("%s differs", name)
		}
	}
	path := filepath.Join(t.TempDir(), "stack.msgpack")
	if err := WriteBundle(path, read); err != nil {
		t.Fatal(err)
	}
	src, err := OpenAdapterPath(path)
	if err != nil {
		t.Fatal(err)
	}
	fresh := tinyModel(t, 94)
	a, _, err := LoadAdapter(fresh, src)
	if err != nil {
		t.Fatal(err)
	}
	if a.PeftType() != PeftTypeMixed {
		t.Fatalf("the bundle loads as %s", a.PeftType())
	}
	if d := relDiff(logits(t, fresh, tinyIDs), want); d != 0 {
		t.Errorf("the bundled stack's logits differ by %g", d)
	}
}
