package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print graft's version, the commit it was built from and the Go version",
		Long: "Print graft's version as the Go toolchain recorded it in the binary: the module version\n" +
			"(a release tag when installed with go install ...@VERSION, else a pseudo-version from the\n" +
			"commit, or (devel)), the commit, its time, whether the tree had uncommitted changes, and\n" +
			"the Go version. graft --version prints the same.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// buildVersion is what the binary knows of its own build.
type buildVersion struct {
	Module   string `json:"module"`
	Version  string `json:"version"` // v1.2.3, a pseudo-version, or (devel)
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// buildVersionOf reads the build information the Go toolchain embeds
// (nil: a binary without it).
func buildVersionOf(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Module: "github.com/graft-ml/graft", Version: "(devel)", Go: runtime.Version()}
	if bi == nil {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// printVersion writes the running binary's version: a few lines, or one
// JSON object.
func printVersion(w io.Writer, asJSON bool) error {
	bi, _ := debug.ReadBuildInfo()
	return writeVersion(w, buildVersionOf(bi), asJSON)
}

func writeVersion(w io.Writer, v buildVersion, asJSON bool) error {
	if asJSON {
		return writeJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "graft\t%s\n", v.Version)
	fmt.Fprintf(tw, "module\t%s\n", v.Module)
	switch {
	case v.Revision == "":
		// go build -buildvcs=false, or a build outside a git checkout.
		fmt.Fprintf(tw, "commit\tunknown (built without version control information)\n")
	case v.Modified:
		fmt.Fprintf(tw, "commit\t%s (with uncommitted changes)\n", v.Revision)
	default:
		fmt.Fprintf(tw, "commit\t%s\n", v.Revision)
	}
	if v.Time != "" {
		fmt.Fprintf(tw, "commit time\t%s\n", v.Time)
	}
	fmt.Fprintf(tw, "go\t%s\n", v.Go)
	return tw.Flush()
}
