package peft

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tensor"
)

// WeightsFileName is the tensor file of a PEFT adapter directory.
const WeightsFileName = "adapter_model.safetensors"

// ConfigFileName is the config file of a PEFT adapter directory.
const ConfigFileName = configFileName

// Save writes adapter name to dir in PEFT's format: adapter_config.json
// (sorted keys, inference_mode true) and adapter_model.safetensors with
// metadata {"format": "pt"} and F32 tensors
// base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight
// [out, r]. Rows of B on projections stored in Meta's RoPE order (GGUF q/k)
// are permuted to Hugging Face's order, so the adapter applies unchanged
// to the Hugging Face model.
//
// A new directory is written under a temporary name beside dir and renamed
// into place. When dir exists, both files are first written completely
// under temporary names inside it and then renamed over the old ones, so
// other files in dir are kept and neither file is ever half written.
func (mg *Manager) Save(dir, name string) error {
	a, err := mg.adapter(name)
	if err != nil {
		return err
	}
	cfg := a.cfg
	cfg.InferenceMode = true
	cfgJSON, err := EncodeConfig(cfg)
	if err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	var tensors []*tensor.Tensor
	for _, w := range a.modules {
		lin := w.layer.lin
		av, err := readAll(mg.b, w.A)
		if err != nil {
			return fmt.Errorf("peft adapter %s: %s lora_A: %w", dir, lin.Name, err)
		}
		bv, err := readAll(mg.b, w.B)
		if err != nil {
			return fmt.Errorf("peft adapter %s: %s lora_B: %w", dir, lin.Name, err)
		}
		if lin.RoPEPermuted > 0 {
			if bv, err = permuteRoPERows(bv, lin.Out, w.r, lin.RoPEPermuted, true); err != nil {
				return fmt.Errorf("peft adapter %s: %s lora_B: %w", dir, lin.Name, err)
			}
		}
		for _, p := range []struct {
			which string
			vals  []float32
			shape tensor.Shape
		}{
			{"lora_A", av, tensor.Shape{w.r, lin.In}},
			{"lora_B", bv, tensor.Shape{lin.Out, w.r}},
		} {
			tn := tensorName(lin.Name, p.which)
			if i := firstNonFinite(p.vals); i >= 0 {
				return fmt.Errorf("peft adapter %s: refusing to save tensor %q: element %d is %g", dir, tn, i, p.vals[i])
			}
			t, err := tensor.FromFloat32(tn, p.shape, p.vals)
			if err != nil {
				return fmt.Errorf("peft adapter %s: %w", dir, err)
			}
			tensors = append(tensors, t)
		}
	}
	if err := writeAdapterDir(dir, cfgJSON, tensors); err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	return nil
}

func readAll(b backend.Backend, buf backend.Buffer) ([]float32, error) {
	out := make([]float32, buf.Shape().Numel())
	if err := b.Read(buf, 0, out); err != nil {
		return nil, err
	}
	return out, nil
}

func firstNonFinite(vals []float32) int {
	for i, v := range vals {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

// permuteRoPERows reorders the rows of a [rows, cols] matrix between Meta's
// interleaved RoPE order (GGUF) and Hugging Face's rotate-half order. Within
// each head of d rows, HF row s·(d/2)+p is Meta row 2p+s (s ∈ {0,1},
// p < d/2).
func permuteRoPERows(vals []float32, rows, cols, heads int, toHF bool) ([]float32, error) {
	if heads <= 0 || rows%heads != 0 || (rows/heads)%2 != 0 {
		return nil, fmt.Errorf("%d rows do not split into %d heads of even size", rows, heads)
	}
	d := rows / heads
	out := make([]float32, len(vals))
	for h := range heads {
		for s := range 2 {
			for p := range d / 2 {
				hf := h*d + s*(d/2) + p
				meta := h*d + 2*p + s
				from, to := meta, hf
				if !toHF {
					from, to = hf, meta
				}
				copy(out[to*cols:(to+1)*cols], vals[from*cols:(from+1)*cols])
			}
		}
	}
	return out, nil
}

// writeAdapterDir writes the two files of an adapter directory atomically.
func writeAdapterDir(dir string, cfgJSON []byte, tensors []*tensor.Tensor) error {
	dir = filepath.Clean(dir)
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("%s exists and is not a directory", dir)
	case err == nil:
		return replaceFiles(dir, cfgJSON, tensors)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := writeFileSynced(filepath.Join(tmp, configFileName), func(f *os.File) error {
		_, err := f.Write(cfgJSON)
		return err
	}); err != nil {
		return err
	}
	if err := writeFileSynced(filepath.Join(tmp, WeightsFileName), func(f *os.File) error {
		return safetensors.Write(f, tensors, map[string]string{"format": "pt"})
	}); err != nil {
		return err
	}
	os.Chmod(tmp, 0o755) // MkdirTemp makes 0700; best effort, as above
	return os.Rename(tmp, dir)
}

// replaceFiles writes both files under temporary names in an existing dir,
// then renames them over the old ones.
func replaceFiles(dir string, cfgJSON []byte, tensors []*tensor.Tensor) (err error) {
	var temps []string
	defer func() {
		if err != nil {
			for _, t := range temps {
				os.Remove(t)
			}
		}
	}()
	create := func(final string, write func(*os.File) error) (string, error) {
		f, err := os.CreateTemp(dir, "."+final+".tmp-")
		if err != nil {
			return "", err
		}
		temps = append(temps, f.Name())
		if err := write(f); err != nil {
			f.Close()
			return "", fmt.Errorf("writing %s: %w", final, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return "", err
		}
		f.Chmod(0o644) // CreateTemp makes 0600; best effort where chmod is unsupported (wasip1)
		return f.Name(), f.Close()
	}
	weights, err := create(WeightsFileName, func(f *os.File) error {
		return safetensors.Write(f, tensors, map[string]string{"format": "pt"})
	})
	if err != nil {
		return err
	}
	config, err := create(configFileName, func(f *os.File) error {
		_, err := f.Write(cfgJSON)
		return err
	})
	if err != nil {
		return err
	}
	if err := os.Rename(weights, filepath.Join(dir, WeightsFileName)); err != nil {
		return err
	}
	return os.Rename(config, filepath.Join(dir, configFileName))
}

// writeFileSynced creates path, lets write fill it and syncs it to disk.
func writeFileSynced(path string, write func(*os.File) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
