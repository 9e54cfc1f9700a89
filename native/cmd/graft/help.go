package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// helpWidth is the width help text is wrapped to.
const helpWidth = 100

// groupAnnotation is the flag annotation naming the heading a flag is
// listed under in its command's help; flags without one are listed under
// "Flags".
const groupAnnotation = "graft_help_group"

// noteAnnotation prefixes a command annotation holding text printed after
// a flag group's flags (graft train's table of methods).
const noteAnnotation = "graft_help_note:"

// orderAnnotation is the command annotation listing its flag groups'
// headings in the order help prints them, one a line; groups it leaves
// out follow in the order of their first flag.
const orderAnnotation = "graft_help_order"

// setGroupOrder sets the order of cmd's flag groups in its help.
func setGroupOrder(cmd *cobra.Command, headings ...string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[orderAnnotation] = strings.Join(headings, "\n")
}

// setGroup lists the named flags under heading in the command's help.
// Groups are printed in the order of their first flag.
func setGroup(fs *pflag.FlagSet, heading string, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, groupAnnotation, []string{heading}); err != nil {
			panic(err) // a flag name misspelt in graft's own code
		}
	}
}

// setGroupNote adds text after a flag group's flags in cmd's help.
func setGroupNote(cmd *cobra.Command, heading, note string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[noteAnnotation+heading] = note
}

// helpFunc prints a command's help on its standard output (help is
// asked for, so it is the command's output).
func helpFunc(cmd *cobra.Command, _ []string) {
	io.WriteString(cmd.OutOrStdout(), helpText(cmd))
}

// helpText is a command's help: what it does, its usage line, its
// subcommands, examples and flags, grouped.
func helpText(cmd *cobra.Command) string {
	var b strings.Builder
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	fmt.Fprintf(&b, "%s\n\nUsage:\n", strings.TrimSpace(desc))
	if !cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "  %s\n", cmd.UseLine())
	} else {
		fmt.Fprintf(&b, "  %s COMMAND [flags]\n\nCommands:\n", cmd.CommandPath())
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() || c.Name() == "help" {
				fmt.Fprintf(&b, "  %-11s %s\n", c.Name(), c.Short)
			}
		}
	}
	if cmd.Example != "" {
		fmt.Fprintf(&b, "\nExamples:\n%s\n", strings.TrimRight(cmd.Example, "\n"))
	}
	b.WriteString(flagHelp(cmd))
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nRun '%[1]s help COMMAND' (or '%[1]s COMMAND --help') for a command's flags.\n", cmd.CommandPath())
	}
	return b.String()
}

// flagHelp lists a command's flags under their group headings, in the
// order the command defines them, aligned in one column throughout.
func flagHelp(cmd *cobra.Command) string {
	type group struct {
		heading string
		flags   []*pflag.Flag
	}
	var groups []*group
	byHeading := map[string]*group{}
	left := map[*pflag.Flag]string{}
	width := 0
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		heading := "Flags"
		if h := f.Annotations[groupAnnotation]; len(h) > 0 {
			heading = h[0]
		}
		g := byHeading[heading]
		if g == nil {
			g = &group{heading: heading}
			byHeading[heading] = g
			groups = append(groups, g)
		}
		g.flags = append(g.flags, f)
		l := flagLeft(f)
		left[f] = l
		width = max(width, len(l))
	})
	rank := map[string]int{}
	if order := cmd.Annotations[orderAnnotation]; order != "" {
		for i, h := range strings.Split(order, "\n") {
			rank[h] = i + 1
		}
	}
	slices.SortStableFunc(groups, func(a, b *group) int {
		ra, rb := rank[a.heading], rank[b.heading]
		if ra == 0 {
			ra = len(rank) + 1
		}
		if rb == 0 {
			rb = len(rank) + 1
		}
		return ra - rb
	})
	var b strings.Builder
	for _, g := range groups {
		fmt.Fprintf(&b, "\n%s:\n", g.heading)
		for _, f := range g.flags {
			fmt.Fprintf(&b, "%-*s  %s\n", width, left[f], wrap(flagUsage(f), helpWidth-width-2, strings.Repeat(" ", width+2)))
		}
		if note := cmd.Annotations[noteAnnotation+g.heading]; note != "" {
			fmt.Fprintf(&b, "%s\n", strings.TrimRight(note, "\n"))
		}
	}
	return b.String()
}

// flagLeft is a flag's name and value placeholder: "  -h, --help",
// "      --steps int".
func flagLeft(f *pflag.Flag) string {
	s := "      --" + f.Name
	if f.Shorthand != "" {
		s = "  -" + f.Shorthand + ", --" + f.Name
	}
	if name, _ := pflag.UnquoteUsage(f); name != "" {
		s += " " + name
	}
	return s
}

// flagUsage is a flag's description with its default, when it has one
// that is not the zero value.
func flagUsage(f *pflag.Flag) string {
	_, usage := pflag.UnquoteUsage(f)
	switch f.DefValue {
	case "", "0", "false", "[]", "<nil>":
		return usage
	}
	if f.Value.Type() == "string" {
		return fmt.Sprintf("%s (default %q)", usage, f.DefValue)
	}
	return fmt.Sprintf("%s (default %s)", usage, f.DefValue)
}

// wrap breaks text into lines of at most width characters at spaces
// (longer words stay whole); lines after the first start with indent.
func wrap(text string, width int, indent string) string {
	width = max(width, 30)
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		switch {
		case i == 0:
		case n+1+len(word) > width:
			b.WriteString("\n" + indent)
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}
