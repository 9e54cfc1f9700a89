package modelpath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// hfRef is a parsed Hugging Face name: ORG/NAME[@REV][:QUANT] or
// ORG/NAME[@REV]/FILE.
type hfRef struct {
	repo  string // ORG/NAME, or NAME for the few repositories without an owner
	rev   string // branch, tag or commit; "" for main
	quant string // a GGUF file whose name contains this (case-insensitively)
	file  string // a file in the repository
}

func parseHFName(name string) (hfRef, bool) {
	parts := strings.Split(name, "/")
	var ref hfRef
	last := &parts[0]
	if len(parts) >= 2 {
		last = &parts[1]
		ref.file = strings.Join(parts[2:], "/")
	}
	base, rest, hasRev := strings.Cut(*last, "@")
	hasQuant := false
	if !hasRev {
		base, ref.quant, hasQuant = strings.Cut(*last, ":")
	} else {
		ref.rev, ref.quant, hasQuant = strings.Cut(rest, ":")
		if !validPart(ref.rev) {
			return hfRef{}, false
		}
		if ref.rev == "main" {
			ref.rev = "" // the default, with its fallback to a lone snapshot
		}
	}
	*last = base
	if !validPart(parts[0]) || (len(parts) >= 2 && !validPart(parts[1])) || (hasQuant && !validPart(ref.quant)) {
		return hfRef{}, false
	}
	if ref.file != "" && ref.quant != "" {
		return hfRef{}, false
	}
	if len(parts) > 2 {
		for _, p := range parts[2:] {
			if p == "" || p == "." || p == ".." {
				return hfRef{}, false
			}
		}
	}
	ref.repo = parts[0]
	if len(parts) >= 2 {
		ref.repo += "/" + parts[1]
	}
	return ref, true
}

// hfRepoDir is where the cache keeps a model repository.
func hfRepoDir(root, repo string) string {
	return filepath.Join(root, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// resolveHF looks ref up in the cache. An empty Resolved with a nil error
// means not there; looked says where it looked.
func (s Stores) resolveHF(ref hfRef) (Resolved, string, error) {
	dir := hfRepoDir(s.HF.Dir, ref.repo)
	looked := fmt.Sprintf("%s (Hugging Face cache, %s)", dir, s.HF.From)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Resolved{}, looked, nil
	}
	commit, err := hfCommit(dir, ref.rev)
	if err != nil {
		return Resolved{}, looked, fmt.Errorf("%s in the Hugging Face cache: %w", ref.repo, err)
	}
	snap := filepath.Join(dir, "snapshots", commit)
	r := Resolved{Store: "huggingface", Revision: commit}
	if ref.file != "" {
		p := filepath.Join(snap, filepath.FromSlash(ref.file))
		if _, err := os.Stat(p); err != nil {
			return Resolved{}, looked, fmt.Errorf("%s in the Hugging Face cache: snapshot %s has no %s%s", ref.repo, commit, ref.file, listGGUF(snap))
		}
		r.Path = p
		return r, looked, nil
	}
	if _, err := os.Stat(filepath.Join(snap, "config.json")); err == nil && ref.quant == "" {
		r.Path = snap
		return r, looked, nil
	}
	files := ggufFiles(snap)
	if ref.quant != "" {
		var match []string
		for _, f := range files {
			if strings.Contains(strings.ToLower(f), strings.ToLower(ref.quant)) {
				match = append(match, f)
			}
		}
		if len(match) != 1 {
			return Resolved{}, looked, fmt.Errorf("%s in the Hugging Face cache: %d GGUF files match %q in snapshot %s%s", ref.repo, len(match), ref.quant, commit, listGGUF(snap))
		}
		files = match
	}
	switch len(files) {
	case 0:
		return Resolved{}, looked, fmt.Errorf("%s in the Hugging Face cache: snapshot %s holds neither config.json nor a .gguf file (an interrupted download?)", ref.repo, snap)
	case 1:
		r.Path = filepath.Join(snap, filepath.FromSlash(files[0]))
		return r, looked, nil
	}
	return Resolved{}, looked, fmt.Errorf("%s in the Hugging Face cache holds %d GGUF files; name one as %s:QUANT or %s/FILE%s", ref.repo, len(files), ref.repo, ref.repo, listGGUF(snap))
}

// hfCommit finds the snapshot of rev ("" for main): the commit
// refs/REV names, or REV itself when it is a snapshot; without a ref for
// main, the only snapshot there is.
func hfCommit(dir, rev string) (string, error) {
	name := rev
	if name == "" {
		name = "main"
	}
	snapshots := filepath.Join(dir, "snapshots")
	data, err := os.ReadFile(filepath.Join(dir, "refs", name))
	switch {
	case err == nil:
		commit := strings.TrimSpace(string(data))
		if !validPart(commit) {
			return "", fmt.Errorf("refs/%s holds %q, not a commit", name, commit)
		}
		if _, err := os.Stat(filepath.Join(snapshots, commit)); err != nil {
			return "", fmt.Errorf("refs/%s names commit %s, which is not in %s (an interrupted download?)", name, commit, snapshots)
		}
		return commit, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if _, err := os.Stat(filepath.Join(snapshots, name)); err == nil && validPart(name) {
		return name, nil
	}
	entries, _ := os.ReadDir(snapshots)
	var commits []string
	for _, e := range entries {
		if e.IsDir() {
			commits = append(commits, e.Name())
		}
	}
	if rev == "" && len(commits) == 1 {
		return commits[0], nil
	}
	return "", fmt.Errorf("no refs/%s and no snapshot %s in %s (snapshots: %s)", name, name, dir, strings.Join(orNone(commits), ", "))
}

func orNone(list []string) []string {
	if len(list) == 0 {
		return []string{"none"}
	}
	return list
}

// ggufFiles lists the GGUF model files of a snapshot, as slash paths
// relative to it: not multimodal projectors (mmproj), and of a model
// split in parts only the first part.
func ggufFiles(snap string) []string {
	var out []string
	filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := strings.ToLower(d.Name())
		if !strings.HasSuffix(name, ".gguf") || strings.Contains(name, "mmproj") {
			return nil
		}
		if i := strings.LastIndex(name, "-of-"); i > 0 && !strings.HasSuffix(name[:i], "-00001") {
			return nil
		}
		rel, _ := filepath.Rel(snap, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out
}

// listGGUF is ": a.gguf, b.gguf" for errors, or "".
func listGGUF(snap string) string {
	files := ggufFiles(snap)
	if len(files) == 0 {
		return ""
	}
	return " (GGUF files: " + strings.Join(files, ", ") + ")"
}

// listHF lists the cache's models at their main revision.
func (s Stores) listHF() []Entry {
	if s.HF.Dir == "" {
		return nil
	}
	repos, _ := os.ReadDir(s.HF.Dir)
	var out []Entry
	for _, d := range repos {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), "models--") {
			continue
		}
		repo := strings.ReplaceAll(strings.TrimPrefix(d.Name(), "models--"), "--", "/")
		dir := filepath.Join(s.HF.Dir, d.Name())
		commit, err := hfCommit(dir, "")
		if err != nil {
			continue
		}
		snap := filepath.Join(dir, "snapshots", commit)
		e := Entry{Name: repo, Store: "huggingface", Revision: commit}
		if _, err := os.Stat(filepath.Join(snap, "config.json")); err == nil {
			e.Format, e.Path, e.Size = "hf", snap, treeSize(snap)
			out = append(out, e)
		}
		files := ggufFiles(snap)
		for _, f := range files {
			g := e
			g.Format, g.Path = "gguf", filepath.Join(snap, filepath.FromSlash(f))
			if st, err := os.Stat(g.Path); err == nil {
				g.Size = st.Size()
			}
			if len(files) > 1 || e.Format == "hf" {
				g.Name = repo + "/" + f
			}
			out = append(out, g)
		}
	}
	return out
}

// treeSize adds up the sizes of the files under dir, following the
// cache's links to its blobs.
func treeSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				n += st.Size()
			}
		}
		return nil
	})
	return n
}
