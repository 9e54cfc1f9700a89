package safetensors

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// modelTensors returns tensors of 16, 16, 40, 8 and 8 bytes in model order.
func modelTensors(t *testing.T) []*tensor.Tensor {
	return []*tensor.Tensor{
		mustTensor(t, "model.embed_tokens.weight", tensor.F32, tensor.Shape{2, 2}, seqBytes(16, 1)),
		mustTensor(t, "model.layers.0.self_attn.q_proj.weight", tensor.BF16, tensor.Shape{2, 4}, seqBytes(16, 2)),
		mustTensor(t, "model.layers.0.mlp.up_proj.weight", tensor.F16, tensor.Shape{4, 5}, seqBytes(40, 3)),
		mustTensor(t, "model.norm.weight", tensor.F32, tensor.Shape{2}, seqBytes(8, 4)),
		mustTensor(t, "lm_head.weight", tensor.F16, tensor.Shape{2, 2}, seqBytes(8, 5)),
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func checkSetHolds(t *testing.T, s *Set, tensors []*tensor.Tensor) {
	t.Helper()
	var want []string
	for _, tt := range tensors {
		want = append(want, tt.Name)
	}
	slices.Sort(want)
	if got := s.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, tt := range tensors {
		info, ok := s.Tensor(tt.Name)
		if !ok || info.DType != tt.DType || !info.Shape.Equal(tt.Shape) {
			t.Errorf("Tensor(%q) = %+v, %v", tt.Name, info, ok)
		}
		got, err := s.ReadTensor(tt.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, tt.Data) {
			t.Errorf("%q: data differs", tt.Name)
		}
	}
	if _, err := s.ReadTensor("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("ReadTensor(nope) = %v", err)
	}
}

func TestShardedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tensors := modelTensors(t)
	// 32-byte shards: [16 16] [40] [8 8]; the 40-byte tensor gets its own.
	if err := WriteSharded(dir, tensors, 32, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", IndexFileName}
	if got := dirNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Fatalf("files = %v, want %v", got, wantFiles)
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	wantIndex := `{
  "metadata": {
    "total_size": 88
  },
  "weight_map": {
    "lm_head.weight": "model-00003-of-00003.safetensors",
    "model.embed_tokens.weight": "model-00001-of-00003.safetensors",
    "model.layers.0.mlp.up_proj.weight": "model-00002-of-00003.safetensors",
    "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00003.safetensors",
    "model.norm.weight": "model-00003-of-00003.safetensors"
  }
}
`
	if string(raw) != wantIndex {
		t.Errorf("index =\n%s\nwant\n%s", raw, wantIndex)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Index == nil || len(s.Files) != 3 || s.Files[0].Metadata["format"] != "pt" {
		t.Errorf("set: index %v, %d files", s.Index, len(s.Files))
	}
	checkSetHolds(t, s, tensors)
	if f, ok := s.Shard("model.norm.weight"); !ok || filepath.Base(f.Name) != "model-00003-of-00003.safetensors" {
		t.Errorf("Shard(model.norm.weight) = %v, %v", f, ok)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Saving again in one shard replaces the sharded layout entirely.
	if err := WriteSharded(dir, tensors, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{SingleFileName}) {
		t.Fatalf("after single-shard save, files = %v", got)
	}
	s2, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Index != nil || len(s2.Files) != 1 {
		t.Errorf("single set: index %v, %d files", s2.Index, len(s2.Files))
	}
	checkSetHolds(t, s2, tensors)
	s2.Close()

	// And back to shards: the stale model.safetensors must go, or OpenDir
	// would prefer it. Unrelated files stay.
	other := filepath.Join(dir, "adapter_model.safetensors")
	if err := WriteFile(other, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSharded(dir, tensors, 40, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"adapter_model.safetensors", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", IndexFileName}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after re-sharding, files = %v, want %v", got, want)
	}
}

func TestPlanShards(t *testing.T) {
	sizes := func(n ...int) []*tensor.Tensor {
		var ts []*tensor.Tensor
		for i, s := range n {
			ts = append(ts, &tensor.Tensor{Name: string(rune('a' + i)), Data: make([]byte, s)})
		}
		return ts
	}
	for _, c := range []struct {
		sizes []int
		max   int64
		want  [][]int
	}{
		{nil, 10, [][]int{nil}},
		{[]int{5, 5, 5}, 10, [][]int{{5, 5}, {5}}},
		{[]int{20, 1, 1}, 10, [][]int{{20}, {1, 1}}},
		{[]int{1, 20, 1}, 10, [][]int{{1}, {20}, {1}}},
		{[]int{0, 10, 0}, 10, [][]int{{0, 10, 0}}},
	} {
		var got [][]int
		for _, shard := range planShards(sizes(c.sizes...), c.max) {
			var s []int
			for _, tt := range shard {
				s = append(s, len(tt.Data))
			}
			got = append(got, s)
		}
		if len(got) != len(c.want) {
			t.Errorf("sizes %v max %d: got %v, want %v", c.sizes, c.max, got, c.want)
			continue
		}
		for i := range got {
			if !slices.Equal(got[i], c.want[i]) {
				t.Errorf("sizes %v max %d: got %v, want %v", c.sizes, c.max, got, c.want)
			}
		}
	}
}

func TestOpenDirFallbackGlob(t *testing.T) {
	dir := t.TempDir()
	ts := modelTensors(t)
	if err := WriteFile(filepath.Join(dir, "b.safetensors"), ts[:2], nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "a.safetensors"), ts[2:], nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Files) != 2 || filepath.Base(s.Files[0].Name) != "a.safetensors" {
		t.Errorf("files = %v", s.Files)
	}
	checkSetHolds(t, s, ts)
}

func writeIndex(t *testing.T, dir string, idx any) {
	t.Helper()
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDirErrors(t *testing.T) {
	ts := modelTensors(t)
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"empty dir", func(t *testing.T, dir string) {}, "no model.safetensors"},
		{"name in two files", func(t *testing.T, dir string) {
			WriteFile(filepath.Join(dir, "x.safetensors"), ts[:2], nil)
			WriteFile(filepath.Join(dir, "y.safetensors"), ts[1:3], nil)
		}, `tensor "model.layers.0.self_attn.q_proj.weight" appears in both x.safetensors and y.safetensors`},
		{"name in two shards of an index", func(t *testing.T, dir string) {
			WriteFile(filepath.Join(dir, "s1.safetensors"), ts[:2], nil)
			WriteFile(filepath.Join(dir, "s2.safetensors"), ts[:1], nil)
			writeIndex(t, dir, map[string]any{"weight_map": map[string]string{ts[0].Name: "s1.safetensors", ts[1].Name: "s2.safetensors"}})
		}, "appears in both"},
		{"weight_map entry missing from shard", func(t *testing.T, dir string) {
			WriteFile(filepath.Join(dir, "s1.safetensors"), ts[:1], nil)
			WriteFile(filepath.Join(dir, "s2.safetensors"), ts[1:2], nil)
			writeIndex(t, dir, map[string]any{"weight_map": map[string]string{ts[0].Name: "s1.safetensors", ts[1].Name: "s1.safetensors", "ghost": "s2.safetensors"}})
		}, `maps tensor "ghost" to s2.safetensors, which does not contain it`},
		{"weight_map points at the wrong shard", func(t *testing.T, dir string) {
			WriteFile(filepath.Join(dir, "s1.safetensors"), ts[:1], nil)
			WriteFile(filepath.Join(dir, "s2.safetensors"), ts[1:2], nil)
			writeIndex(t, dir, map[string]any{"weight_map": map[string]string{ts[0].Name: "s2.safetensors", ts[1].Name: "s2.safetensors"}})
		}, "does not contain it"},
		{"missing shard file", func(t *testing.T, dir string) {
			writeIndex(t, dir, map[string]any{"weight_map": map[string]string{"a": "gone.safetensors"}})
		}, "gone.safetensors"},
		{"shard outside dir", func(t *testing.T, dir string) {
			writeIndex(t, dir, map[string]any{"weight_map": map[string]string{"a": "../x.safetensors"}})
		}, `shard "../x.safetensors" is not a plain file name`},
		{"index without weight_map", func(t *testing.T, dir string) {
			writeIndex(t, dir, map[string]any{"metadata": map[string]any{}})
		}, "missing weight_map"},
		{"index not json", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, IndexFileName), []byte("{oops"), 0o644)
		}, IndexFileName},
		{"corrupt shard", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "m.safetensors"), []byte("junkjunkjunk"), 0o644)
		}, "m.safetensors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(t, dir)
			s, err := OpenDir(dir)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestOpenDirIndexExtrasAreExposed(t *testing.T) {
	dir := t.TempDir()
	ts := modelTensors(t)
	if err := WriteFile(filepath.Join(dir, "s1.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	writeIndex(t, dir, map[string]any{"metadata": map[string]any{"total_size": 88}, "weight_map": map[string]string{ts[0].Name: "s1.safetensors"}})
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkSetHolds(t, s, ts)
	if string(s.Index.Metadata["total_size"]) != "88" {
		t.Errorf("index metadata = %v", s.Index.Metadata)
	}
}

func TestWriteShardedRejects(t *testing.T) {
	dir := t.TempDir()
	ts := modelTensors(t)
	if err := WriteSharded(dir, ts, 0, nil); err == nil {
		t.Error("max shard size 0 accepted")
	}
	dup := append(ts, ts[0])
	if err := WriteSharded(dir, dup, 32, nil); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate names: %v", err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("failed saves left files: %v", got)
	}
}
