package data

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadTextParagraphs(t *testing.T) {
	in := "ab\ncd\n\n  \r\nef\r\n\n\n"
	got, err := ReadText(strings.NewReader(in), "t.txt", newByteTok(), 100)
	if err != nil {
		t.Fatal(err)
	}
	bos := tokID(1, false)
	want := []Example{build(bos, txt("ab\ncd", true)), build(bos, txt("ef", true))}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A long paragraph is cut into pieces of at most seqLen tokens that
// overlap by one, so every token after BOS is a target exactly once.
func TestReadTextCutsWithOverlap(t *testing.T) {
	bos := tokID(1, false)
	tests := []struct {
		text   string
		seqLen int
		want   []Example
	}{
		{"abcdefg", 4, []Example{
			build(bos, txt("abc", true)),
			build(txt("c", false), txt("def", true)),
			build(txt("f", false), txt("g", true)),
		}},
		{"abcdef", 4, []Example{ // 7 tokens: the pieces end exactly
			build(bos, txt("abc", true)),
			build(txt("c", false), txt("def", true)),
		}},
		{"a", 2, []Example{build(bos, txt("a", true))}},
		{"ab", 2, []Example{build(bos, txt("a", true)), build(txt("a", false), txt("b", true))}},
	}
	for _, tt := range tests {
		got, err := ReadText(strings.NewReader(tt.text), "t.txt", newByteTok(), tt.seqLen)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q seqLen %d: got %v, want %v", tt.text, tt.seqLen, got, tt.want)
		}
		targets := 0
		for _, ex := range got {
			if len(ex.IDs) > tt.seqLen {
				t.Errorf("%q: piece of %d tokens", tt.text, len(ex.IDs))
			}
			targets += ex.LossTokens()
		}
		if targets != len(tt.text) {
			t.Errorf("%q: %d targets, want %d", tt.text, targets, len(tt.text))
		}
	}
}

func TestReadTextErrors(t *testing.T) {
	if _, err := ReadText(strings.NewReader(" \n\n\t\n"), "blank.txt", newByteTok(), 8); err == nil || !strings.Contains(err.Error(), "blank.txt: no text") {
		t.Errorf("blank text: %v", err)
	}
	if _, err := ReadText(strings.NewReader("abc"), "t.txt", newByteTok(), 1); err == nil || !strings.Contains(err.Error(), "t.txt: sequence length 1") {
		t.Errorf("seqLen 1: %v", err)
	}
	// Without BOS a one-byte paragraph trains nothing and is skipped.
	got, err := ReadText(strings.NewReader("a\n\nbc"), "t.txt", &byteTok{bos: -1, eos: 2}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Example{build(txt("b", false), txt("c", true))}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
