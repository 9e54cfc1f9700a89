package peft

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tensor"
)

// Files holds an adapter's files by name (adapter_config.json,
// adapter_model.safetensors, ...): what Save writes into a directory, what
// a msgpack bundle carries, and what the browser exports without a file
// system. A Stack's parts sit one directory down, named
// "<subfolder>/<file>" with a forward slash.
type Files map[string][]byte

// Source is where an adapter's files are read from.
type Source interface {
	// Name identifies the source in errors: a directory or bundle path.
	Name() string
	// ReadFile returns one file's contents; a missing file gives an error
	// wrapping fs.ErrNotExist.
	ReadFile(name string) ([]byte, error)
}

// Dir reads adapter files from a directory.
func Dir(path string) Source { return dirSource(path) }

type dirSource string

func (d dirSource) Name() string { return string(d) }

// maxAdapterFile bounds one adapter file read whole into memory.
const maxAdapterFile = 4 << 30

func (d dirSource) ReadFile(name string) ([]byte, error) {
	return readLimited(filepath.Join(string(d), name), maxAdapterFile)
}

// InMemory reads adapter files held in memory; name is used in errors.
func InMemory(name string, files Files) Source { return memSource{name, files} }

type memSource struct {
	name  string
	files Files
}

func (m memSource) Name() string { return m.name }

func (m memSource) ReadFile(name string) ([]byte, error) {
	data, ok := m.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %s: %w", m.name, name, fs.ErrNotExist)
	}
	return data, nil
}

// sourcePath names a file of a source in errors.
func sourcePath(src Source, name string) string { return filepath.Join(src.Name(), name) }

// Save writes an adapter's files into dir atomically: a new directory is
// written under a temporary name beside it and renamed into place; in an
// existing directory every file is first written under a temporary name
// and then renamed over the old one, so other files are kept and no file
// is ever half written.
func Save(a Adapter, dir string) error {
	files, err := a.Files()
	if err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	if err := WriteDir(dir, files); err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	return nil
}

// WriteDir writes files into dir with the atomicity Save describes. A
// name may hold one directory ("lora/adapter_config.json", a Stack's
// part), which is created. A directory holds one adapter: writing a stack
// manifest removes a single adapter's adapter_config.json and
// adapter_model.safetensors left at the top, and writing those removes a
// stack manifest left there, so that LoadAdapter reads what was written.
func WriteDir(dir string, files Files) error {
	dir = filepath.Clean(dir)
	names := make([]string, 0, len(files))
	for n := range files {
		if err := checkFileName(n); err != nil {
			return err
		}
		names = append(names, n)
	}
	// The manifest goes last, once the parts it lists are complete.
	sort.Slice(names, func(i, j int) bool {
		if mi, mj := names[i] == StackManifestFileName, names[j] == StackManifestFileName; mi != mj {
			return mj
		}
		return names[i] < names[j]
	})
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("%s exists and is not a directory", dir)
	case err == nil:
		return replaceFiles(dir, names, files)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteDir(dir, func(tmp string) error {
		for _, n := range names {
			p := filepath.Join(tmp, filepath.FromSlash(n))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(p, files[n], 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", n, err)
			}
		}
		return nil
	})
}

// checkFileName accepts "name" and "dir/name" with plain components.
func checkFileName(n string) error {
	parts := strings.Split(n, "/")
	if len(parts) > 2 {
		return fmt.Errorf("file name %q is nested more than one directory deep", n)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || p != filepath.Base(p) || strings.ContainsAny(p, `\:`) {
			return fmt.Errorf("file name %q is not a plain name", n)
		}
	}
	return nil
}

// staleMarkers are the top-level files of the other kind of adapter
// directory than files describes, which WriteDir removes.
func staleMarkers(files Files) []string {
	if _, ok := files[StackManifestFileName]; ok {
		return []string{ConfigFileName, WeightsFileName}
	}
	if _, ok := files[ConfigFileName]; ok {
		return []string{StackManifestFileName}
	}
	return nil
}

// replaceFiles writes and syncs every file under a temporary name in an
// existing dir, then renames them over the old ones.
func replaceFiles(dir string, names []string, files Files) error {
	pending := make([]*atomicfile.File, 0, len(names))
	defer func() {
		for _, f := range pending {
			f.Close() // discards the temporary files of a failed write
		}
	}()
	stale := staleMarkers(files)
	if slices.Contains(stale, StackManifestFileName) {
		// Before anything else: a crash part way must not leave the old
		// stack's manifest beside the new adapter.
		if err := os.Remove(filepath.Join(dir, StackManifestFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		stale = nil
	}
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := atomicfile.Create(p, 0o644)
		if err != nil {
			return err
		}
		pending = append(pending, f)
		if _, err := f.Write(files[n]); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
	}
	for i, f := range pending {
		if err := f.Commit(); err != nil {
			return fmt.Errorf("writing %s: %w", names[i], err)
		}
	}
	// After the manifest: a crash before here leaves it beside the old
	// adapter's files, and the manifest wins.
	for _, n := range stale {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// readerAt adapts file contents for the safetensors parser.
func readerAt(data []byte) *bytes.Reader { return bytes.NewReader(data) }

// readConfigFile reads adapter_config.json from src within maxConfigSize.
func readConfigFile(src Source) (data []byte, path string, err error) {
	path = sourcePath(src, ConfigFileName)
	data, err = src.ReadFile(ConfigFileName)
	if err != nil {
		return nil, path, fmt.Errorf("peft config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, path, fmt.Errorf("peft config %s: larger than the %d-byte limit", path, maxConfigSize)
	}
	return data, path, nil
}

// readConfig reads src's adapter_config.json into a config of type T (see
// ParseConfig); errors name the file.
func readConfig[T any](src Source) (cfg T, path string, warnings []string, err error) {
	data, path, err := readConfigFile(src)
	if err != nil {
		return cfg, path, nil, err
	}
	if cfg, warnings, err = ParseConfig[T](data); err != nil {
		err = fmt.Errorf("peft config %s: %w", path, err)
	}
	return cfg, path, warnings, err
}

// prefixWarnings prefixes each warning with the config file's path.
func prefixWarnings(path string, warnings []string) []string {
	for i, w := range warnings {
		warnings[i] = path + ": " + w
	}
	return warnings
}

// pickles names, for each weights file, the PyTorch pickle a directory may
// hold instead, which graft does not read, and how to save safetensors.
var pickles = map[string][2]string{
	WeightsFileName:           {"adapter_model.bin", "save with safe_serialization=True"},
	BottleneckWeightsFileName: {bnTorchWeightsFileName, "save with use_safetensors=True"},
}

// readWeightsFile reads an adapter's weights file (WeightsFileName or
// BottleneckWeightsFileName) from src.
func readWeightsFile(src Source, name string) ([]byte, error) {
	data, err := src.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		if p := pickles[name]; p[0] != "" {
			if _, perr := src.ReadFile(p[0]); perr == nil {
				return nil, fmt.Errorf("peft adapter %s: only %s (a PyTorch pickle) is present; graft reads %s (%s)", src.Name(), p[0], name, p[1])
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("peft adapter %s: %w", src.Name(), err)
	}
	return data, nil
}

// readExactTensors reads adapter_model.safetensors from src; see
// readTensorsIn.
func readExactTensors(src Source, expected map[string]tensor.Shape, explain func(name string) string) (map[string][]float32, error) {
	return readTensorsIn(src, WeightsFileName, expected, explain, nil)
}

// readTensorsIn reads the weights file name from src. It must hold exactly
// the expected tensors, each with its shape, a float dtype (converted to
// F32) and finite values; explain says why an unexpected name is refused,
// hint (nil: nothing) what the expected shape of a tensor follows from.
// Errors name the file and the tensor.
func readTensorsIn(src Source, name string, expected map[string]tensor.Shape, explain, hint func(name string) string) (map[string][]float32, error) {
	data, err := readWeightsFile(src, name)
	if err != nil {
		return nil, err
	}
	path := sourcePath(src, name)
	f, err := safetensors.Parse(readerAt(data), int64(len(data)), path)
	if err != nil {
		return nil, err
	}
	for _, ti := range f.Tensors {
		if _, ok := expected[ti.Name]; !ok {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %s", path, ti.Name, explain(ti.Name))
		}
	}
	var missing []string
	for n := range expected {
		if _, ok := f.Tensor(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("safetensors %s: tensor %q is missing (%d of the %d tensors the config implies are absent)", path, missing[0], len(missing), len(expected))
	}
	out := make(map[string][]float32, len(expected))
	for _, ti := range f.Tensors {
		if want := expected[ti.Name]; !ti.Shape.Equal(want) {
			why := ""
			if hint != nil {
				why = " (" + hint(ti.Name) + ")"
			}
			return nil, fmt.Errorf("safetensors %s: tensor %q has shape %v, want %v%s", path, ti.Name, ti.Shape, want, why)
		}
		if out[ti.Name], err = readFloatTensor(f, ti, path); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readFloatTensor reads a tensor of a float dtype as F32 values, refusing
// non-finite ones.
func readFloatTensor(f *safetensors.File, ti safetensors.TensorInfo, path string) ([]float32, error) {
	switch ti.DType {
	case tensor.F32, tensor.F16, tensor.BF16, tensor.F64:
	default:
		return nil, fmt.Errorf("safetensors %s: tensor %q has dtype %s; want F32, F16, BF16 or F64", path, ti.Name, ti.DTypeName)
	}
	t, err := f.ReadTensor(ti.Name)
	if err != nil {
		return nil, err
	}
	vals, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, ti.Name, err)
	}
	if i := firstNonFinite(vals); i >= 0 {
		return nil, fmt.Errorf("safetensors %s: tensor %q: element %d is %g", path, ti.Name, i, vals[i])
	}
	return vals, nil
}
