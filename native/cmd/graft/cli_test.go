package main

import (
	"bytes"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/peft"
)

// commandNames are every command graft has; scripts call them by these
// names.
var commandNames = []string{"models", "inspect", "tokenize", "generate", "chat", "eval", "export", "merge", "train", "version", "help", "completion"}

func TestHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"train", "--help"}, {"train", "-help"}, {"help", "train"}, {"inspect", "-h"}} {
		stdout, stderr, code := graft(t, args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage:") {
			t.Errorf("graft %q: exit %d, stderr %q, stdout %d bytes; want the help on stdout and exit 0", args, code, stderr, len(stdout))
		}
	}
	// graft alone prints the help too, with the status of a usage error.
	if stdout, _, code := graft(t); code != 2 || !strings.Contains(stdout, "Commands:") {
		t.Errorf("graft: exit %d, stdout %q", code, stdout)
	}
}

func TestHelpCommandIsCommandHelp(t *testing.T) {
	root, _, _ := graft(t, "--help")
	for _, name := range commandNames {
		if !strings.Contains(root, "\n  "+name+" ") {
			t.Errorf("graft --help does not list %s:\n%s", name, root)
		}
	}
	for _, c := range rootCmd(io.Discard, io.Discard).Commands() {
		name := c.Name()
		if name == "help" || c.Hidden {
			continue
		}
		viaHelp, _, code1 := graft(t, "help", name)
		viaFlag, _, code2 := graft(t, name, "--help")
		if code1 != 0 || code2 != 0 || viaHelp != viaFlag {
			t.Errorf("graft help %s (exit %d) differs from graft %s --help (exit %d):\n%s\n----\n%s", name, code1, name, code2, viaHelp, viaFlag)
		}
		if !strings.Contains(viaFlag, "graft "+name) {
			t.Errorf("graft %s --help does not show its usage:\n%s", name, viaFlag)
		}
	}
}

func TestTopLevelHelpListsEveryMethod(t *testing.T) {
	out, _, _ := graft(t, "--help")
	for _, name := range peft.MethodNames() {
		if !strings.Contains(out, name) {
			t.Errorf("graft --help does not name method %s", name)
		}
	}
	if strings.Contains(strings.ToLower(out), "lora only") || strings.Contains(out, "LoRA adapter") {
		t.Errorf("graft --help still speaks of LoRA alone:\n%s", out)
	}
}

// helpSections splits help text at its headings (unindented lines ending
// in a colon), keyed by the heading's first word.
func helpSections(help string) (headings []string, sections map[string]string) {
	sections = map[string]string{}
	cur := ""
	for _, line := range strings.Split(help, "\n") {
		if line != "" && line[0] != ' ' && strings.HasSuffix(line, ":") {
			cur = strings.TrimSuffix(strings.SplitN(line, " ", 2)[0], ":")
			headings = append(headings, cur)
			continue
		}
		sections[cur] += line + "\n"
	}
	return headings, sections
}

func TestTrainHelpIsGrouped(t *testing.T) {
	out, _, _ := graft(t, "train", "--help")
	headings, sections := helpSections(out)
	want := []string{"Usage", "Examples", "Model", "Data", "Method", "Optimisation", "Evaluation", "Output", "Run", "Flags"}
	if !slices.Equal(headings, want) {
		t.Fatalf("headings %q, want %q", headings, want)
	}
	if n := strings.Count(sections["Examples"], "  graft train "); n != 3 {
		t.Errorf("%d examples, want 3:\n%s", n, sections["Examples"])
	}
	method := sections["Method"]
	for _, meth := range peft.Methods() {
		if !strings.Contains(method, "    "+meth.Name+" ") {
			t.Errorf("the method section does not describe %s", meth.Name)
		}
		for name := range meth.Flags {
			if name != "model" && !strings.Contains(method, "--"+name+" ") {
				t.Errorf("the method section lacks %s's flag --%s", meth.Name, name)
			}
		}
	}
	for heading, flags := range map[string][]string{
		"Model":        {"--model", "--device", "--quantize"},
		"Data":         {"--data", "--seq-len", "--pack"},
		"Optimisation": {"--steps", "--epochs", "--lr", "--batch", "--grad-accum", "--warmup", "--schedule"},
		"Evaluation":   {"--eval", "--eval-every", "--save-every", "--resume"},
		"Output":       {"--out", "--json", "--quiet"},
	} {
		for _, f := range flags {
			if !strings.Contains(sections[heading], f+" ") {
				t.Errorf("%s lacks %s:\n%s", heading, f, sections[heading])
			}
		}
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	for _, args := range [][]string{{"trian"}, {"help", "trian"}, {"genrate", "--model", "x"}} {
		stdout, stderr, code := graft(t, args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("graft %q: exit %d, stdout %q, stderr %q: want exit 2 and one line on stderr", args, code, stdout, stderr)
		}
		if !strings.Contains(stderr, "unknown command") || !strings.Contains(stderr, "did you mean") {
			t.Errorf("graft %q: stderr %q: want a suggestion", args, stderr)
		}
	}
}

func TestUnknownFlagSuggests(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"train", "--stpes", "5"}, "did you mean --steps?"},
		{[]string{"train", "-stpes", "5"}, "did you mean --steps?"},
		{[]string{"train", "--learning-rat", "1"}, "unknown flag --learning-rat"},
		{[]string{"generate", "--temprature", "0"}, "did you mean --temperature?"},
		{[]string{"eval", "--seqlen", "4"}, "did you mean --seq-len?"},
		{[]string{"train", "--check", "x"}, "did you mean --checkpointing?"},
		{[]string{"--verison"}, "did you mean --version?"},
	}
	for _, tt := range tests {
		stdout, stderr, code := graft(t, tt.args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("graft %q: exit %d, stdout %q, stderr %q: want exit 2 and one line with %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestOutOfRangeValues(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"train", "--steps", "-5"}, "--steps must be ≥ 1, got -5"},
		{[]string{"train", "--steps=0"}, "--steps must be ≥ 1, got 0"},
		{[]string{"train", "--epochs", "-1"}, "--epochs must be > 0, got -1"},
		{[]string{"train", "--lr", "0"}, "--lr must be > 0, got 0"},
		{[]string{"train", "--lr", "-2"}, "--lr must be > 0, got -2"},
		{[]string{"train", "--r", "0"}, "--r must be ≥ 1, got 0"},
		{[]string{"train", "--seq-len", "1"}, "--seq-len must be ≥ 2, got 1"},
		{[]string{"train", "--batch", "0"}, "--batch must be ≥ 1, got 0"},
		{[]string{"train", "--grad-accum", "-1"}, "--grad-accum must be ≥ 1, got -1"},
		{[]string{"train", "--dropout", "1.5"}, "--dropout must be in [0, 1), got 1.5"},
		{[]string{"train", "--virtual-tokens", "0"}, "--virtual-tokens must be ≥ 1, got 0"},
		{[]string{"train", "--warmup", "-3"}, "--warmup must be ≥ 0, got -3"},
		{[]string{"eval", "--data", "x.jsonl", "--seq-len", "1"}, "--seq-len must be ≥ 2"},
		{[]string{"generate", "--model", modelPath, "--max-tokens", "-1"}, "--max-tokens must be ≥ 0, got -1"},
		{[]string{"generate", "--model", modelPath, "--temperature", "-0.5"}, "--temperature must be ≥ 0, got -0.5"},
		{[]string{"chat", "--model", modelPath, "--message", "hi", "--top-k", "-1"}, "--top-k must be ≥ 0, got -1"},
		{[]string{"generate", "--model", modelPath, "--top-p", "1.5"}, "--top-p must be in [0, 1], got 1.5"},
	}
	for _, tt := range tests {
		_, stderr, code := graft(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("graft %q: exit %d, stderr %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--steps", "ten"}, `--steps "ten": want an integer`},
		{[]string{"train", "--lr", "fast"}, `--lr "fast": want a number`},
		{[]string{"train", "--seed", "-1"}, `--seed "-1": want an integer ≥ 0`},
		{[]string{"train", "--json=maybe"}, `--json "maybe": want true or false`},
		{[]string{"train", "--batch", "99999999999999999999"}, `--batch "99999999999999999999": out of range`},
		{[]string{"train", "--chat-template-var", "novalue"}, `want key=value`},
	} {
		_, stderr, code := graft(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("graft %q: exit %d, stderr %q; want exit 2 and one line with %q", tt.args, code, stderr, tt.want)
		}
	}
	// --steps 0 beside --epochs replaces a --config file's length.
	if _, stderr, _ := graft(t, "train", "--steps", "0", "--epochs", "1", "--data", trainData, "--print-config"); strings.Contains(stderr, "--steps must be") {
		t.Errorf("--steps 0 --epochs 1 refused: %s", stderr)
	}
}

func TestInspectTakesModelFlag(t *testing.T) {
	byPath, _, code1 := graft(t, "inspect", modelPath, "--json")
	byFlag, _, code2 := graft(t, "inspect", "--model", modelPath, "--json")
	if code1 != 0 || code2 != 0 || byPath != byFlag {
		t.Fatalf("inspect PATH (exit %d) and inspect --model PATH (exit %d) differ:\n%s\n%s", code1, code2, byPath, byFlag)
	}
	if _, stderr, code := graft(t, "inspect", "--model", modelPath, modelPath); code != 2 || !strings.Contains(stderr, "not both") {
		t.Errorf("both forms: exit %d, stderr %q", code, stderr)
	}
}

// TestSingleDashLongFlags checks that -name works as --name, as it did
// when graft read its flags with Go's flag package.
func TestSingleDashLongFlags(t *testing.T) {
	double, _, code1 := graft(t, "generate", "--model", modelPath, "--prompt", "Once", "--max-tokens", "8", "--temperature", "0", "--json")
	single, stderr, code2 := graft(t, "generate", "-model", modelPath, "-prompt", "Once", "-max-tokens=8", "-temperature", "0", "-json")
	if code1 != 0 || code2 != 0 || double != single {
		t.Fatalf("single-dash flags (exit %d, %s) gave %q, double-dash (exit %d) %q", code2, stderr, single, code1, double)
	}
	root := rootCmd(io.Discard, io.Discard)
	for _, tt := range []struct{ in, want []string }{
		{[]string{"train", "-steps", "5", "-json"}, []string{"train", "--steps", "5", "--json"}},
		{[]string{"generate", "--prompt", "-steps", "-h"}, []string{"generate", "--prompt", "-steps", "-h"}},
		{[]string{"generate", "-prompt=-x", "--", "-json"}, []string{"generate", "--prompt=-x", "--", "-json"}},
		{[]string{"train", "--lr", "-1e-3", "-5"}, []string{"train", "--lr", "-1e-3", "-5"}},
		{[]string{"-version"}, []string{"--version"}},
		{[]string{"train", "-r", "4", "-r=8", "-h", "-x"}, []string{"train", "--r", "4", "--r=8", "-h", "-x"}},
	} {
		if got := longFlagArgs(root, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("longFlagArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	cmd, stderr, code := graft(t, "version")
	flag, _, code2 := graft(t, "--version")
	if code != 0 || code2 != 0 || cmd != flag || stderr != "" {
		t.Fatalf("graft version (exit %d) %q and graft --version (exit %d) %q differ", code, cmd, code2, flag)
	}
	if !strings.Contains(cmd, runtime.Version()) || !strings.HasPrefix(cmd, "graft ") {
		t.Errorf("version %q lacks the Go version %s", cmd, runtime.Version())
	}
	var v buildVersion
	graftJSON(t, &v, "version")
	if v.Go != runtime.Version() || v.Version == "" || v.Module == "" {
		t.Errorf("version --json = %+v", v)
	}

	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/graft-ml/graft", Version: "v0.3.1"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-07T01:02:03Z"}, {Key: "vcs.modified", Value: "true"}}}
	var b bytes.Buffer
	if err := writeVersion(&b, buildVersionOf(bi), false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"graft        v0.3.1\n", "0123abcd (with uncommitted changes)", "2026-12-07T01:02:03Z", "go1.26.0"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("version text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	writeVersion(&b, buildVersionOf(&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/graft-ml/graft", Version: "(devel)"}}), false)
	if !strings.Contains(b.String(), "built without version control information") {
		t.Errorf("a build without VCS stamps does not say so:\n%s", b.String())
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, stderr, code := graft(t, "completion", shell)
		if code != 0 || !strings.Contains(out, "graft") || stderr != "" {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), stderr)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"steps", "steps", 0}, {"stpes", "steps", 2}, {"step", "steps", 1}, {"", "lr", 2}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
