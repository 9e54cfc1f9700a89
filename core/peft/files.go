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

// prefixWarnings prefixes each warning with the config file's path.
func prefixWarnings(path string, warnings []string) []string {
	for i, w := range warnings {
		warnings[i] = path + ": " + w
	}
	return warnings
}
