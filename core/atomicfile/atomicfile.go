// Package atomicfile writes files and directories so that a reader (or a
// run that crashed half way) sees either the old content or the complete
// new one, never a mix: data goes to a temporary name beside the target,
// is synced, and is renamed over it only once complete.
//
// It builds for native, GOOS=js and GOOS=wasip1; where a filesystem cannot
// sync (errors.ErrUnsupported), the write still completes without it.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically, like os.WriteFile: an existing
// file is replaced, and a new one gets perm (before the umask).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// File is a temporary file that becomes path on Commit. Close without
// Commit discards it and leaves path untouched, so the idiom is
//
//	f, err := atomicfile.Create(path, 0o644)
//	...
//	defer f.Close()
//	... write to f ...
//	return f.Commit()
//
// File is not buffered; wrap it in a bufio.Writer for many small writes.
type File struct {
	f    *os.File
	path string
	done bool // committed or discarded
}

// Create opens a fresh temporary file beside path, in the same directory
// so that the final rename never crosses filesystems.
func Create(path string, perm fs.FileMode) (*File, error) {
	f, err := createTemp(path, perm)
	if err != nil {
		return nil, err
	}
	return &File{f: f, path: path}, nil
}

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, fmt.Errorf("write %s: %w", f.path, fs.ErrClosed)
	}
	return f.f.Write(p)
}

// Sync flushes what was written so far to stable storage, so that a
// caller committing several files together can make them all durable
// before renaming any (Commit syncs as well).
func (f *File) Sync() error {
	if f.done {
		return fmt.Errorf("sync %s: %w", f.path, fs.ErrClosed)
	}
	return sync(f.f)
}

// Commit syncs and closes the temporary file and renames it to path. On
// failure the temporary file is removed and path keeps its old content.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: %w", f.path, fs.ErrClosed)
	}
	f.done = true
	err := sync(f.f)
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.f.Name())
	}
	return err
}

// Close discards the temporary file unless Commit ran; after Commit it
// does nothing, so it can always be deferred.
func (f *File) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.f.Close()
	if rerr := os.Remove(f.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// WriteDir builds a directory atomically: fill writes the files into a
// fresh temporary directory beside dir (mode 0755 before the umask), which
// is then renamed to dir. An existing dir is replaced as a whole: it is
// moved aside, the new one renamed in, and the old one removed only then;
// if the second rename fails the old directory is put back. (Between the
// two renames dir is briefly absent: portable renames cannot swap two
// directories.) On failure the temporary directory is removed. A dir that
// exists as something other than a directory is an error.
func WriteDir(dir string, fill func(tmp string) error) (err error) {
	dir = filepath.Clean(dir)
	if st, err := os.Lstat(dir); err == nil && !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	tmp, err := mkdirTemp(dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if _, err := os.Lstat(dir); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return os.Rename(tmp, dir)
	}
	aside := tmp + ".old"
	if err := os.Rename(dir, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(aside, dir) // put the old directory back
		return err
	}
	return os.RemoveAll(aside)
}

// tempName is a hidden name beside path that says what it will become.
func tempName(path string) string {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, fmt.Sprintf(".%s.tmp-%016x", base, rand.Uint64()))
}

// createTemp creates a new temporary file for path with mode perm. Unlike
// os.CreateTemp (always 0600) the file gets the mode a plainly created file
// would, since it becomes the result; no chmod is needed, which some
// filesystems (wasip1) do not support.
func createTemp(path string, perm fs.FileMode) (*os.File, error) {
	for range 100 {
		f, err := os.OpenFile(tempName(path), os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("could not create a temporary file next to %s", path)
}

// mkdirTemp creates a new temporary directory for dir, with mode 0755 for
// the same reason createTemp takes perm (os.MkdirTemp makes 0700).
func mkdirTemp(dir string) (string, error) {
	for range 100 {
		name := tempName(dir)
		err := os.Mkdir(name, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, err
	}
	return "", fmt.Errorf("could not create a temporary directory next to %s", dir)
}

// sync flushes f to stable storage where the filesystem can; one that
// cannot (some wasip1 and js hosts) gives no stronger guarantee to wait for.
func sync(f *os.File) error {
	if err := f.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

// CheckAbsent returns an error wrapping fs.ErrExist when path names a file
// or a non-empty directory. Writing replaces what is there without a
// word (rename does), so a caller that must not replace a user's file
// asks first, before any work; an empty directory counts as absent, as it
// holds nothing to lose.
func CheckAbsent(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		return fmt.Errorf("%s is a directory holding %d entries: %w", path, len(entries), fs.ErrExist)
	}
	return fmt.Errorf("%s: %w", path, fs.ErrExist)
}
