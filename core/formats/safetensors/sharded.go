package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/tensor"
)

// File names used by Hugging Face transformers for model weights.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// maxIndexSize bounds the index JSON we read; real indexes of the largest
// public models are a few megabytes.
const maxIndexSize = 64 << 20

// shardNamePattern matches the shard names WriteSharded produces, and so the
// files it may replace.
var shardNamePattern = regexp.MustCompile(`^model-[0-9]{5}-of-[0-9]{5}\.safetensors$`)

// Index is the content of a model.safetensors.index.json file.
type Index struct {
	// Metadata holds the index's free-form metadata (transformers writes
	// {"total_size": N}); values are kept as raw JSON.
	Metadata map[string]json.RawMessage `json:"metadata,omitempty"`
	// WeightMap maps each tensor name to the shard file holding it.
	WeightMap map[string]string `json:"weight_map"`
}

// Set is a checkpoint that may span several safetensors files, presented
// as a single namespace of tensors.
type Set struct {
	// Dir is the directory the set was opened from.
	Dir string
	// Files are the open shards, sorted by file name.
	Files []*File
	// Index is the parsed index file, nil when the set was not opened
	// through one.
	Index *Index

	owner map[string]*File
	names []string
}

// OpenDir opens the weights of a Hugging Face model directory. It uses, in
// order of preference, model.safetensors; model.safetensors.index.json and
// the shards it names; or else every *.safetensors file in dir. A tensor
// name found in two files is an error, as is an index entry whose shard
// does not contain that tensor. Tensors present in a shard but absent from
// the index are still exposed, as transformers loads whole shards.
func OpenDir(dir string) (*Set, error) {
	single := filepath.Join(dir, SingleFileName)
	if ok, err := fileExists(single); err != nil {
		return nil, err
	} else if ok {
		return openFiles(dir, nil, []string{SingleFileName})
	}
	indexPath := filepath.Join(dir, IndexFileName)
	if ok, err := fileExists(indexPath); err != nil {
		return nil, err
	} else if ok {
		idx, err := readIndex(indexPath)
		if err != nil {
			return nil, err
		}
		shards := make(map[string]bool)
		for _, shard := range idx.WeightMap {
			shards[shard] = true
		}
		return openFiles(dir, idx, sortedNames(shards))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".safetensors") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("safetensors %s: no %s, %s or *.safetensors files", dir, SingleFileName, IndexFileName)
	}
	return openFiles(dir, nil, names) // ReadDir sorts by name
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("safetensors: %w", err)
}

// readIndex reads and checks an index file. Shard names must be plain file
// names so that an index cannot point outside its directory.
func readIndex(path string) (*Index, error) {
	data, err := readLimited(path, maxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", path, err)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", path, err)
	}
	if idx.WeightMap == nil {
		return nil, fmt.Errorf("safetensors index %s: missing weight_map", path)
	}
	for _, name := range sortedNames(idx.WeightMap) {
		shard := idx.WeightMap[name]
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("safetensors index %s: tensor %q: shard %q is not a plain file name", path, name, shard)
		}
	}
	return &idx, nil
}

// readLimited reads a whole file after checking it is at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("file is %d bytes, over the %d-byte limit", st.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// openFiles opens the named files in dir and builds the combined lookup.
func openFiles(dir string, idx *Index, names []string) (_ *Set, err error) {
	s := &Set{Dir: dir, Index: idx, owner: make(map[string]*File)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for _, name := range names {
		f, err := Open(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		s.Files = append(s.Files, f)
		for _, t := range f.Tensors {
			if prev, dup := s.owner[t.Name]; dup {
				return nil, fmt.Errorf("safetensors %s: tensor %q appears in both %s and %s", dir, t.Name, filepath.Base(prev.Name), name)
			}
			s.owner[t.Name] = f
		}
	}
	if idx != nil {
		for _, name := range sortedNames(idx.WeightMap) {
			shard := idx.WeightMap[name]
			if f, ok := s.owner[name]; !ok || filepath.Base(f.Name) != shard {
				return nil, fmt.Errorf("safetensors %s: %s maps tensor %q to %s, which does not contain it", dir, IndexFileName, name, shard)
			}
		}
	}
	s.names = sortedNames(s.owner)
	return s, nil
}

// Names returns every tensor name in the set, sorted.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Shard returns the file that holds the named tensor.
func (s *Set) Shard(name string) (*File, bool) {
	f, ok := s.owner[name]
	return f, ok
}

// Tensor returns the description of the named tensor.
func (s *Set) Tensor(name string) (*TensorInfo, bool) {
	f, ok := s.owner[name]
	if !ok {
		return nil, false
	}
	return f.Tensor(name)
}

// ReadTensor reads the named tensor from whichever shard holds it.
func (s *Set) ReadTensor(name string) (*tensor.Tensor, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", s.Dir, name)
	}
	return f.ReadTensor(name)
}

// Close closes every shard, returning the first error.
func (s *Set) Close() error {
	var first error
	for _, f := range s.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// WriteSharded saves tensors into dir the way transformers' save_pretrained
// does. Tensors are packed, in the order given, into shards of at most
// maxShardBytes of tensor data (a tensor larger than that gets a shard of
// its own). A single shard is written as model.safetensors; several are
// written as model-00001-of-0000N.safetensors plus an index whose metadata
// records total_size. metadata (for example {"format": "pt"}) goes into
// every shard's header.
//
// Each file is written atomically, shards before the index. Weight files
// left by an earlier save that the new layout does not use (model.safetensors,
// the index, model-XXXXX-of-YYYYY.safetensors) are then removed, so that
// OpenDir cannot mix old and new weights.
func WriteSharded(dir string, tensors []*tensor.Tensor, maxShardBytes int64, metadata map[string]string) error {
	if maxShardBytes <= 0 {
		return fmt.Errorf("safetensors %s: maximum shard size %d is not positive", dir, maxShardBytes)
	}
	if _, err := sortAndCheck(tensors); err != nil {
		return fmt.Errorf("safetensors %s: %w", dir, err)
	}
	shards := planShards(tensors, maxShardBytes)
	if len(shards) > 99999 {
		return fmt.Errorf("safetensors %s: %d shards exceed the 5-digit shard numbering", dir, len(shards))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	keep := make(map[string]bool)
	if len(shards) == 1 {
		if err := WriteFile(filepath.Join(dir, SingleFileName), shards[0], metadata); err != nil {
			return err
		}
		keep[SingleFileName] = true
		return removeStale(dir, keep)
	}
	idx := Index{
		Metadata:  make(map[string]json.RawMessage),
		WeightMap: make(map[string]string),
	}
	var total int64
	for i, shard := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := WriteFile(filepath.Join(dir, name), shard, metadata); err != nil {
			return err
		}
		keep[name] = true
		for _, t := range shard {
			idx.WeightMap[t.Name] = name
			total += int64(len(t.Data))
		}
	}
	idx.Metadata["total_size"] = json.RawMessage(fmt.Sprint(total))
	// transformers writes the index with indent=2 and sorted keys.
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors %s: encoding index: %w", dir, err)
	}
	data = append(data, '\n')
	indexPath := filepath.Join(dir, IndexFileName)
	if err := atomicfile.WriteFile(indexPath, data, 0o644); err != nil {
		return fmt.Errorf("safetensors %s: %w", indexPath, err)
	}
	keep[IndexFileName] = true
	return removeStale(dir, keep)
}

// planShards groups tensors, in order, into shards of at most max bytes.
func planShards(tensors []*tensor.Tensor, max int64) [][]*tensor.Tensor {
	shards := [][]*tensor.Tensor{nil}
	var size int64
	for _, t := range tensors {
		n := int64(len(t.Data))
		cur := len(shards) - 1
		if len(shards[cur]) > 0 && size+n > max {
			shards = append(shards, nil)
			cur++
			size = 0
		}
		shards[cur] = append(shards[cur], t)
		size += n
	}
	return shards
}

// removeStale deletes weight files of an earlier save that are not in keep.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if keep[name] || e.IsDir() {
			continue
		}
		if name == SingleFileName || name == IndexFileName || shardNamePattern.MatchString(name) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("safetensors: removing stale weights: %w", err)
			}
		}
	}
	return nil
}
