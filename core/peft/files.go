package peft

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/graft-ml/graft/core/atomicfile"
)

// Files holds an adapter's files by name (adapter_config.json,
// adapter_model.safetensors, ...): what Save writes into a directory, what
// a msgpack bundle carries, and what the browser exports without a file
// system.
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

// WriteDir writes files into dir with the atomicity Save describes.
func WriteDir(dir string, files Files) error {
	dir = filepath.Clean(dir)
	names := make([]string, 0, len(files))
	for n := range files {
		if n == "" || n != filepath.Base(n) || n == "." || n == ".." {
			return fmt.Errorf("file name %q is not a plain name", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
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
			if err := atomicfile.WriteFile(filepath.Join(tmp, n), files[n], 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", n, err)
			}
		}
		return nil
	})
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
	for _, n := range names {
		f, err := atomicfile.Create(filepath.Join(dir, n), 0o644)
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
