package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadByExtension(t *testing.T) {
	bos, eos := tokID(1, false), tokID(2, true)
	tests := []struct {
		name, content string
		opt           Options
		want          []Example
	}{
		{"d.jsonl", "{\"text\":\"ab\"}\n{\"prompt\":\"a\",\"completion\":\"b\"}\n", DefaultOptions(),
			[]Example{build(bos, txt("ab", true), eos), build(bos, txt("a", false), txt("b", true), eos)}},
		{"lines.JSON", "{\"text\":\"ab\"}\n", Options{}, []Example{build(bos, txt("ab", true))}},
		{"array.json", "[\n {\"instruction\":\"i\",\"output\":\"o\"}\n]\n", Options{},
			[]Example{build(bos, txt("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\ni\n\n### Response:\n", false), txt("o", true))}},
		{"t.txt", "abcd\n\nef\n", Options{TextSeqLen: 3},
			[]Example{build(bos, txt("ab", true)), build(txt("b", false), txt("cd", true)), build(bos, txt("ef", true))}},
		{"whole.txt", "abcd\n", Options{}, []Example{build(bos, txt("abcd", true))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(writeFile(t, tt.name, tt.content), newByteTok(), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadErrorsNamePath(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"d.csv", "a,b\n", `unknown dataset extension ".csv"`},
		{"empty.jsonl", "\n\n", "no records"},
		{"bad.jsonl", "{\"text\":\"a\"}\n{\"role\":\"user\"}\n", "bad.jsonl:2: record has none of the known shapes"},
		{"bad.json", "[{\"text\":\"a\"},\n\n {\"text\":\"a\",\"output\":\"b\"}]", "bad.json:3: record mixes shapes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.name, tt.content)
			_, err := Load(path, newByteTok(), DefaultOptions())
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want the path and %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.jsonl"), newByteTok(), Options{}); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadInvalidUTF8(t *testing.T) {
	tests := []struct{ name, content, where string }{
		{"d.jsonl", "{\"text\":\"ok\"}\n{\"text\":\"caf\xe9\"}\n", ":2:13: invalid UTF-8 (byte 0xe9)"},
		{"d.json", "[{\"text\":\"ok\"},\n {\"text\":\"caf\xe9\"}]\n", ":2:14: invalid UTF-8 (byte 0xe9)"},
		{"d.txt", "ok\n\ncaf\xe9\n", ":3:4: invalid UTF-8 (byte 0xe9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.name, tt.content)
			_, err := Load(path, newByteTok(), DefaultOptions())
			if err == nil || !strings.Contains(err.Error(), path+tt.where) || !strings.Contains(err.Error(), "allow_invalid_utf8") {
				t.Fatalf("err %v, want %q and how to allow it", err, path+tt.where)
			}
			var warnings []string
			opt := DefaultOptions()
			opt.AllowInvalidUTF8, opt.Warn = true, func(s string) { warnings = append(warnings, s) }
			got, err := Load(path, newByteTok(), opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], path+tt.where) || !strings.Contains(warnings[0], "U+FFFD") {
				t.Fatalf("warnings %q", warnings)
			}
			// The byte reads as U+FFFD in every format, as encoding/json
			// reads it.
			want, err := Load(writeFile(t, tt.name, strings.ReplaceAll(tt.content, "\xe9", "\uFFFD")), newByteTok(), DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	// Many bad lines: the warning lists a few and counts the rest.
	path := writeFile(t, "many.txt", strings.Repeat("\xff\n", 8))
	var warning string
	opt := Options{AllowInvalidUTF8: true, Warn: func(s string) { warning = s }}
	if _, err := Load(path, newByteTok(), opt); err != nil {
		t.Fatal(err)
	}
	if strings.Count(warning, "invalid UTF-8") != maxInvalidLines || !strings.Contains(warning, "and 3 more lines") {
		t.Fatalf("warning %q", warning)
	}
}
