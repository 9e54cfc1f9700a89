package peft

import (
	"fmt"

	"github.com/graft-ml/graft/core/model"
)

// Several adapters may act on one linear layer (LoRA and (IA)³ both on
// v_proj, say): model.Linear.AddHook nests their hooks, the one added later
// wrapping the earlier ones, as PEFT's mixed model nests tuner layers. The
// output is then outer(inner(base)): an (IA)³ vector added after LoRA
// scales base + LoRA term, one added before it scales only the base.
//
// Merging folds a hook's terms into the layer's weight, which is right only
// while the hooks beneath it are folded in too and none above it is: the
// merged hooks of a layer always form its innermost run. So merging goes
// innermost first (as PEFT's merge_recursively does) and unmerging
// outermost first; the checks below refuse the other orders with an error
// that says what to do.

// stackedHook is implemented by every LinearHook of this package, so that
// merging one adapter can check the others on the same layer.
type stackedHook interface {
	model.LinearHook
	// mergeState reports whether any, and whether all, of the terms the
	// hook adds are merged into the layer's weight.
	mergeState() (anyMerged, allMerged bool)
	// adapterKind names the hook's method in errors ("LoRA").
	adapterKind() string
}

// hookKind names a hook in errors.
func hookKind(h model.LinearHook) string {
	if s, ok := h.(stackedHook); ok {
		return s.adapterKind()
	}
	return fmt.Sprintf("%T", h)
}

// hookIndex is h's position on lin, innermost 0, or -1.
func hookIndex(lin *model.Linear, h model.LinearHook) int {
	for i, x := range lin.Hooks() {
		if x == h {
			return i
		}
	}
	return -1
}

// checkMergeOrder refuses to merge (more of) h into lin's weight unless
// every hook beneath h is wholly merged and none above it is merged at all.
// A hook of another package counts as unmerged.
func checkMergeOrder(lin *model.Linear, h model.LinearHook) error {
	hooks := lin.Hooks()
	i := hookIndex(lin, h)
	for _, below := range hooks[:max(i, 0)] {
		all := false
		if s, ok := below.(stackedHook); ok {
			_, all = s.mergeState()
		}
		if !all {
			return fmt.Errorf("%s: the %s adapter beneath this %s adapter is not merged; merge the adapters of a layer in the order they were added", lin.Name, hookKind(below), hookKind(h))
		}
	}
	return checkOuterUnmerged(lin, h, "merge")
}

// checkUnmergeOrder refuses to unmerge h from lin's weight (or remove it)
// while a hook wrapped around it is merged.
func checkUnmergeOrder(lin *model.Linear, h model.LinearHook) error {
	return checkOuterUnmerged(lin, h, "unmerge")
}

func checkOuterUnmerged(lin *model.Linear, h model.LinearHook, what string) error {
	i := hookIndex(lin, h)
	if i < 0 {
		return nil
	}
	for _, above := range lin.Hooks()[i+1:] {
		if s, ok := above.(stackedHook); ok {
			if anyMerged, _ := s.mergeState(); anyMerged {
				return fmt.Errorf("%s: cannot %s this %s adapter while the %s adapter added after it, on the same layer, is merged; unmerge or unload that one first", lin.Name, what, hookKind(h), hookKind(above))
			}
		}
	}
	return nil
}
