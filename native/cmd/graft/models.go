package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/modelpath"
)

func modelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "list the models in the local Hugging Face cache and Ollama store",
		Long: "List the models in the local Hugging Face cache and Ollama store, the names --model takes\n" +
			"besides paths. graft never downloads.",
	}
	fs := cmd.Flags()
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout := cmd.OutOrStdout()
		if len(pos) > 0 {
			return usagef("unexpected arguments %q", pos)
		}
		stores := modelpath.DefaultStores()
		models := stores.List()
		if *asJSON {
			if models == nil {
				models = []modelpath.Entry{}
			}
			return writeJSON(stdout, struct {
				Models []modelpath.Entry `json:"models"`
				Stores modelpath.Stores  `json:"stores"`
			}{models, stores})
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		if len(models) > 0 {
			fmt.Fprintln(w, "NAME\tSTORE\tFORMAT\tSIZE\tPATH")
			for _, m := range models {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.Store, m.Format, humanBytes(m.Size), m.Path)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%d models in:\n", len(models))
		if stores.HF.Dir != "" {
			fmt.Fprintf(w, "  %s\t(Hugging Face cache, %s)\n", stores.HF.Dir, stores.HF.From)
		}
		for _, r := range stores.Ollama {
			fmt.Fprintf(w, "  %s\t(Ollama, %s)\n", r.Dir, r.From)
		}
		return w.Flush()
	}
	return cmd
}

// humanBytes writes a size as people read it: 1.5 GB, 270 MB, 12 KB.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
