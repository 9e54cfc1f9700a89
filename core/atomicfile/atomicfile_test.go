package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// entries lists dir's names, so tests can see that no temporary is left.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkMode compares path's permission bits with want less the umask, the
// mode os.WriteFile would give. Hosts without Unix modes are not checked.
func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" || runtime.GOOS == "wasip1" || runtime.GOOS == "js" {
		return
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if err := os.WriteFile(ref, nil, want); err != nil {
		t.Fatal(err)
	}
	rst, err := os.Stat(ref)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != rst.Mode().Perm() {
		t.Errorf("%s: mode %v, want %v (as os.WriteFile makes it)", path, got, rst.Mode().Perm())
	}
}

func TestWriteFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  *string // nil: no file before
		perm fs.FileMode
	}{
		{name: "new", perm: 0o644},
		{name: "replace", old: new("old content that is longer"), perm: 0o644},
		{name: "private", perm: 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.json")
			if tc.old != nil {
				if err := os.WriteFile(path, []byte(*tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new"), tc.perm); err != nil {
				t.Fatal(err)
			}
			if got := readString(t, path); got != "new" {
				t.Errorf("content %q, want %q", got, "new")
			}
			if got := entries(t, dir); !slices.Equal(got, []string{"out.json"}) {
				t.Errorf("directory holds %q, want only out.json", got)
			}
			if tc.old == nil {
				checkMode(t, path, tc.perm)
			}
		})
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "out")
	if err := WriteFile(path, []byte("x"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory: %v, want ErrNotExist", err)
	}
}

// A writer that fails half way (Close without Commit) leaves the old file
// exactly as it was and no temporary behind.
func TestCloseWithoutCommitKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.gguf")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("half of the new")); err != nil {
		t.Fatal(err)
	}
	if got := len(entries(t, dir)); got != 2 {
		t.Fatalf("%d entries while writing, want the file and its temporary", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "old" {
		t.Errorf("content %q after a discarded write, want %q", got, "old")
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"model.gguf"}) {
		t.Errorf("directory holds %q, want only model.gguf", got)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := f.Commit(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
}

// A failing rename (here: the target is a non-empty directory) leaves the
// target untouched and removes the temporary.
func TestCommitFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit over a non-empty directory succeeded")
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"target"}) {
		t.Errorf("directory holds %q, want only target", got)
	}
	if got := entries(t, path); !slices.Equal(got, []string{"inside"}) {
		t.Errorf("target holds %q, want it untouched", got)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after a failed Commit: %v", err)
	}
}

func TestCommitThenClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.safetensors")
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one ", "two"} {
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if got := readString(t, path); got != "one two" {
		t.Errorf("content %q", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"a.safetensors"}) {
		t.Errorf("directory holds %q", got)
	}
	checkMode(t, path, 0o644)
}

func TestWriteDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		old     bool // a directory with a stale file exists before
		failing bool // fill fails half way
	}{
		{name: "new"},
		{name: "replace", old: true},
		{name: "failing new", failing: true},
		{name: "failing replace", old: true, failing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "checkpoint-10")
			if tc.old {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "stale"), []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			errFill := errors.New("disk full")
			err := WriteDir(dir, func(tmp string) error {
				if err := WriteFile(filepath.Join(tmp, "state.json"), []byte("{}"), 0o644); err != nil {
					return err
				}
				if tc.failing {
					return errFill
				}
				return WriteFile(filepath.Join(tmp, "params.safetensors"), []byte("p"), 0o644)
			})
			switch {
			case tc.failing && !errors.Is(err, errFill):
				t.Fatalf("WriteDir: %v, want the fill error", err)
			case !tc.failing && err != nil:
				t.Fatal(err)
			}
			want := []string{"params.safetensors", "state.json"}
			if tc.failing {
				want = nil
				if tc.old {
					want = []string{"stale"}
				}
			}
			if tc.failing && !tc.old {
				if got := entries(t, parent); len(got) != 0 {
					t.Errorf("parent holds %q after a failed new directory, want nothing", got)
				}
				return
			}
			if got := entries(t, dir); !slices.Equal(got, want) {
				t.Errorf("directory holds %q, want %q", got, want)
			}
			if got := entries(t, parent); !slices.Equal(got, []string{"checkpoint-10"}) {
				t.Errorf("parent holds %q, want only checkpoint-10", got)
			}
			if !tc.old {
				if runtime.GOOS != "wasip1" && runtime.GOOS != "js" {
					st, err := os.Stat(dir)
					if err != nil {
						t.Fatal(err)
					}
					if st.Mode().Perm()&0o055 == 0 {
						t.Errorf("directory mode %v: private like os.MkdirTemp's, want 0755 less the umask", st.Mode().Perm())
					}
				}
			}
		})
	}
}

func TestWriteDirOverFile(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	if err := os.WriteFile(dir, []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	called := false
	err := WriteDir(dir, func(tmp string) error {
		called = true
		return nil
	})
	if err == nil || called {
		t.Errorf("WriteDir over a file: err %v, fill called %v; want an error before filling", err, called)
	}
	if got := readString(t, dir); got != "a file" {
		t.Errorf("file now holds %q", got)
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("parent holds %q", got)
	}
}

func TestCheckAbsent(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "model.gguf")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path   string
		exists bool
	}{
		{filepath.Join(dir, "new.gguf"), false},
		{empty, false},
		{file, true},
		{dir, true}, // holds model.gguf and empty
	} {
		err := CheckAbsent(c.path)
		if got := errors.Is(err, fs.ErrExist); got != c.exists || (err != nil && !c.exists) {
			t.Errorf("CheckAbsent(%s) = %v, want exists %v", c.path, err, c.exists)
		}
		if c.exists && !strings.Contains(err.Error(), c.path) {
			t.Errorf("error %q does not name %s", err, c.path)
		}
	}
}
