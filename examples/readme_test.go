// Package examples_test checks that the Go code the READMEs show is code
// that compiles, runs in the tests and handles its errors: each ```go
// block must be quoted verbatim from a Go file of the module (an example
// program here, or an Example function).
package examples_test

import (
	"bufio"
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// root is the repository root, from examples/.
const root = ".."

// A snippet is one ```go block of a README.
type snippet struct {
	readme string
	line   int // of the opening fence
	code   string
}

// goSnippets returns the ```go blocks of a Markdown file.
func goSnippets(t *testing.T, path string) []snippet {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	var cur *snippet
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &snippet{readme: path, line: n}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code += strings.TrimRight(line, " \t") + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed ```go block", path, cur.line)
	}
	return out
}

// readmes lists the repository's README files, outside dependencies.
func readmes(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.Name() == "README.md" {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// goFiles reads the module's Go files (not the separate modules under
// tools/, which the module's tests do not build).
func goFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[path] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// quotedFrom returns the Go file that holds code as whole lines, at any
// indentation by tabs (a README shows a function's body unindented).
func quotedFrom(code string, files map[string]string) string {
	lines := strings.Split(strings.TrimRight(code, "\n"), "\n")
	for depth := range 4 {
		indent := strings.Repeat("\t", depth)
		var b strings.Builder
		for _, l := range lines {
			if l != "" {
				b.WriteString(indent)
			}
			b.WriteString(l + "\n")
		}
		want := "\n" + b.String()
		for _, path := range slices.Sorted(maps.Keys(files)) {
			if strings.Contains("\n"+files[path], want) {
				return path
			}
		}
	}
	return ""
}

// discarded matches an error (or any result) thrown away: "x, _ :=",
// "_ = f()", "_, _ = ...".
var discarded = regexp.MustCompile(`(^|[\s,(])_\s*(,\s*_\s*)?(:=|=[^=])|,\s*_\s*(:=|=[^=])`)

// TestReadmeGoSnippetsAreCompiledCode checks every ```go block of every
// README: quoted verbatim from a Go file of the module, so that the
// module's build and tests compile (and, for the example programs and
// Example functions, run) exactly what a reader copies, and discarding no
// error. The packages holding them are then vetted, which compiles them.
func TestReadmeGoSnippetsAreCompiledCode(t *testing.T) {
	files := goFiles(t)
	dirs := map[string]bool{}
	total := 0
	for _, readme := range readmes(t) {
		for _, s := range goSnippets(t, readme) {
			total++
			src := quotedFrom(s.code, files)
			if src == "" {
				t.Errorf("%s:%d: this ```go block is not quoted verbatim from any Go file of the module; keep it as (part of) an example program or Example function and quote that:\n%s", s.readme, s.line, s.code)
				continue
			}
			dirs[filepath.Dir(src)] = true
			for i, l := range strings.Split(s.code, "\n") {
				if discarded.MatchString(l) && !strings.Contains(l, "range") {
					t.Errorf("%s:%d: discards a result (an error goes unchecked): %s", s.readme, s.line+1+i, strings.TrimSpace(l))
				}
			}
		}
	}
	if total == 0 {
		t.Fatal("found no ```go block in any README")
	}
	var pkgs []string
	for d := range dirs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(rel))
	}
	slices.Sort(pkgs)
	cmd := exec.Command("go", append([]string{"vet"}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	t.Logf("%d snippets, from %s", total, strings.Join(pkgs, " "))
}

// TestSnippetChecks tests the checks themselves on made-up snippets.
func TestSnippetChecks(t *testing.T) {
	files := map[string]string{"a.go": "package a\n\nfunc f() error {\n\tx, err := g()\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn h(x)\n}\n"}
	for code, want := range map[string]string{
		"x, err := g()\nif err != nil {\n\treturn err\n}\n": "a.go",
		"x, err := g()\n":              "a.go",
		"x, err := g()\nreturn h(y)\n": "",
		"x, err := g(\n":               "",
		"err := g()\n":                 "",
	} {
		if got := quotedFrom(code, files); got != want {
			t.Errorf("quotedFrom(%q) = %q, want %q", code, got, want)
		}
	}
	for line, want := range map[string]bool{
		"h, _ := host.New(ctx, opt)":   true,
		"_ = f()":                      true,
		"_, _ = w.Write(b)":            true,
		"res, _ := inst.Train(ctx, r)": true,
		"x, err := g()":                false,
		"for _, s := range xs {":       false, // excluded by the range check above
		"a := b_c":                     false,
		"if x == _y {":                 false,
	} {
		if got := discarded.MatchString(line) && !strings.Contains(line, "range"); got != want {
			t.Errorf("discards(%q) = %v, want %v", line, got, want)
		}
	}
}
