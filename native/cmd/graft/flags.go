package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// longFlagArgs rewrites single-dash long flags (-steps 10, -json) in the
// form cobra reads (--steps 10, --json). graft read its flags with Go's
// flag package, which takes both spellings, and scripts use either; pflag
// would read -steps as the shorthands -s -t -e.... A flag's value is left
// as it is, whatever it looks like (--prompt -x), and so is everything
// after "--".
func longFlagArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		cmd = root
	}
	cmd.InitDefaultHelpFlag()
	fs := cmd.Flags()
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		if a[1] != '-' {
			// -5 and -.5 are not flags; -h stays a shorthand, but -r is
			// the long flag --r.
			switch {
			case name == "" || !isLetter(name[0]):
				continue
			case len(name) == 1 && (fs.Lookup(name) == nil || fs.ShorthandLookup(name) != nil):
				continue
			}
			out[i] = "-" + a
		}
		if f := fs.Lookup(name); f != nil && f.NoOptDefVal == "" && !hasValue {
			i++ // the flag's value
		}
	}
	return out
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// flagError makes cobra's flag errors one line, an unknown flag with the
// nearest flags the command has.
func flagError(cmd *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		if want := valueWanted(iv.GetFlag(), errors.Unwrap(err)); want != "" {
			return usagef("--%s %q: %s", iv.GetFlag().Name, iv.GetValue(), want)
		}
		return usagef("--%s: %v", iv.GetFlag().Name, errors.Unwrap(err))
	}
	var ne *pflag.NotExistError
	if !errors.As(err, &ne) || ne.GetSpecifiedName() == "" {
		return usageError{err}
	}
	name := ne.GetSpecifiedName()
	if s := nearestFlags(cmd.Flags(), name); len(s) > 0 {
		return usagef("unknown flag --%s; did you mean --%s?", name, strings.Join(s, " or --"))
	}
	return usagef("unknown flag --%s (see %s --help)", name, cmd.CommandPath())
}

// valueWanted says what a flag's value must be, from its type; "" for
// values whose own errors say it (chat template variables).
func valueWanted(f *pflag.Flag, cause error) string {
	var ne *strconv.NumError
	outOfRange := errors.As(cause, &ne) && errors.Is(ne.Err, strconv.ErrRange)
	switch t := f.Value.Type(); {
	case outOfRange:
		return "out of range for " + t
	case t == "int" || t == "int64":
		return "want an integer"
	case t == "uint" || t == "uint64":
		return "want an integer ≥ 0"
	case t == "float" || t == "float64":
		return "want a number"
	case t == "bool":
		return "want true or false"
	}
	return ""
}

// nearestFlags returns the flag names of fs closest to name by edit
// distance, if close enough to be a typo, or that name begins.
func nearestFlags(fs *pflag.FlagSet, name string) []string {
	limit := max(2, len(name)/3)
	best := limit + 1
	var out []string
	var prefixed []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if len(name) >= 3 && strings.HasPrefix(f.Name, name) {
			prefixed = append(prefixed, f.Name)
		}
		switch d := editDistance(strings.ToLower(name), f.Name); {
		case d < best:
			best, out = d, []string{f.Name}
		case d == best:
			out = append(out, f.Name)
		}
	})
	if len(prefixed) > 0 {
		// A flag name cut short says more than a near miss.
		out = prefixed
	}
	slices.Sort(out)
	return out
}

// editDistance is the Levenshtein distance between a and b: the fewest
// single-byte insertions, deletions and substitutions that turn one into
// the other.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// A bound is the range of a numeric flag's value.
type bound struct {
	name string
	ok   func(float64) bool
	want string // "≥ 1", "> 0", "in [0, 1)"
}

func atLeast(name string, min float64) bound {
	return bound{name, func(v float64) bool { return v >= min }, fmt.Sprintf("≥ %g", min)}
}

func positive(name string) bound {
	return bound{name, func(v float64) bool { return v > 0 }, "> 0"}
}

// probability is a dropout-like flag: [0, 1).
func probability(name string) bound {
	return bound{name, func(v float64) bool { return v >= 0 && v < 1 }, "in [0, 1)"}
}

// checkBounds reports the first flag given on the command line whose
// value is out of its range: "--steps must be ≥ 1, got -5". Values that
// do not parse as numbers are left to the flag's own parsing.
func checkBounds(fs *pflag.FlagSet, bounds ...bound) error {
	for _, b := range bounds {
		f := fs.Lookup(b.name)
		if f == nil || !f.Changed {
			continue
		}
		text := f.Value.String()
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			continue
		}
		if !b.ok(v) {
			return usagef("--%s must be %s, got %s", b.name, b.want, text)
		}
	}
	return nil
}
