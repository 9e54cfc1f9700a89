package tokenizer

import (
	"slices"
	"sort"
)

// GGUF files name few of a vocabulary's special tokens in metadata, so
// llama.cpp (llama_vocab::impl::load) recognizes the rest by their text:
// end-of-turn, end-of-message and fill-in-the-middle tokens, and the list
// of tokens that end generation. The tables below are llama.cpp's, so that
// graft stops generating, and splits special tokens out of text, where
// llama.cpp does.

// specialRole is a role llama.cpp finds a token for by its text when the
// metadata names none.
type specialRole uint8

const (
	roleEOT specialRole = iota
	roleEOM
	roleFIMPre
	roleFIMSuf
	roleFIMMid
	roleFIMPad
	roleFIMRep
	roleFIMSep
	numRoles
)

// roleKeys are the GGUF metadata names of the roles
// (tokenizer.ggml.<key>_token_id).
var roleKeys = [numRoles]string{"eot", "eom", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep"}

// roleNames lists, per role, the token texts llama.cpp takes for it.
var roleNames = [numRoles][]string{
	roleEOT: {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
		"<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"},
	roleEOM:    {"<|eom_id|>"},
	roleFIMPre: {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"},
	roleFIMSuf: {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"},
	roleFIMMid: {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"},
	roleFIMPad: {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},
	roleFIMRep: {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
	roleFIMSep: {"<|file_sep|>"},
}

// endOfGenerationNames are the token texts that end generation in
// llama.cpp, besides EOS, EOT, EOM and the FIM pad, repo and file-separator
// tokens.
var endOfGenerationNames = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
	"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
	"<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
	"<｜end▁of▁sentence｜>", "[e~[",
}

// alwaysRendered are gpt-oss's message-structure tokens, which llama.cpp
// turns into user-defined tokens so that they show in decoded text.
var alwaysRendered = []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}

// specialSet is what resolveSpecials finds.
type specialSet struct {
	eot, eom int32   // -1 when none
	eog      []int32 // end-of-generation ids, ascending
}

// resolveSpecials follows llama.cpp's recognition of special tokens. ids
// holds the role and EOS ids the metadata gave (-1 for none); lookup finds
// a token by its text, and types, when not nil, receives llama.cpp's
// corrections of token types: tokens it recognizes by name become control
// tokens (gpt-oss's structure tokens user-defined), and the two
// end-of-generation exceptions below are undone.
//
// Where several texts match one role, llama.cpp takes whichever its hash
// map yields first; this takes the lowest id, so the choice is at least
// stable. Every such text ends generation either way.
func resolveSpecials(roleIDs [numRoles]int32, eos int32, lookup func(string) (int32, bool), types []int32) specialSet {
	setType := func(id, typ int32) {
		if types != nil && id >= 0 && int(id) < len(types) {
			types[id] = typ
		}
	}
	control := func(id int32) {
		if types != nil && id >= 0 && int(id) < len(types) && types[id] != TokenTypeControl {
			types[id] = TokenTypeControl
		}
	}
	for role, names := range roleNames {
		if roleIDs[role] >= 0 {
			continue
		}
		for _, name := range names {
			if id, ok := lookup(name); ok && (roleIDs[role] < 0 || id < roleIDs[role]) {
				roleIDs[role] = id
			}
		}
		control(roleIDs[role])
	}
	eog := map[int32]bool{}
	for _, role := range []specialRole{roleFIMPad, roleFIMRep, roleFIMSep} {
		if roleIDs[role] >= 0 {
			eog[roleIDs[role]] = true
		}
	}
	for _, name := range endOfGenerationNames {
		if id, ok := lookup(name); ok {
			eog[id] = true
			control(id)
		}
	}
	for _, name := range alwaysRendered {
		if id, ok := lookup(name); ok {
			setType(id, TokenTypeUserDefined)
		}
	}
	for _, id := range []int32{eos, roleIDs[roleEOT], roleIDs[roleEOM]} {
		if id >= 0 {
			eog[id] = true
		}
	}
	// gpt-oss and Solar Open end a message with <|end|> but go on after it:
	// where their return/call tokens are present it does not end generation.
	in := func(name string) (int32, bool) {
		id, ok := lookup(name)
		return id, ok && eog[id]
	}
	_, hasReturn := in("<|return|>")
	_, hasCall := in("<|call|>")
	_, hasCalls := in("<|calls|>")
	_, hasFlush := in("<|flush|>")
	if end, hasEnd := in("<|end|>"); hasEnd && ((hasReturn && (hasCall || hasCalls)) || ((hasCall || hasCalls) && hasFlush)) {
		delete(eog, end)
		setType(end, TokenTypeUserDefined)
	}
	// Gemma 4 and PaddleOCR use </s> inside a turn.
	if _, ok := in("<|tool_response>"); ok {
		if s, ok := in("</s>"); ok {
			delete(eog, s)
			setType(s, TokenTypeNormal)
		}
	}
	set := specialSet{eot: roleIDs[roleEOT], eom: roleIDs[roleEOM]}
	for id := range eog {
		set.eog = append(set.eog, id)
	}
	slices.Sort(set.eog)
	return set
}

// noRoles is a role table with no ids given.
func noRoles() [numRoles]int32 {
	var r [numRoles]int32
	for i := range r {
		r[i] = -1
	}
	return r
}

// specialNameLookup returns a lookup over the token texts resolveSpecials
// asks for, built in one pass over tokens (lowest id first), for
// vocabularies that keep no map from every text to its id.
func specialNameLookup(tokens []string) func(string) (int32, bool) {
	want := map[string]bool{}
	for _, names := range roleNames {
		for _, n := range names {
			want[n] = true
		}
	}
	for _, n := range endOfGenerationNames {
		want[n] = true
	}
	for _, n := range alwaysRendered {
		want[n] = true
	}
	found := map[string]int32{}
	for i, tok := range tokens {
		if _, seen := found[tok]; !seen && want[tok] {
			found[tok] = int32(i)
		}
	}
	return func(s string) (int32, bool) { id, ok := found[s]; return id, ok }
}

// isSpecialType reports whether llama.cpp cuts tokens of type typ out of
// text before tokenizing the rest (with parse_special, as graft always
// does): control, user-defined and unknown tokens.
func isSpecialType(typ int32) bool {
	return typ == TokenTypeControl || typ == TokenTypeUserDefined || typ == TokenTypeUnknown
}

// specialTable cuts special tokens out of text as llama.cpp's
// tokenizer_st_partition does: each special token in turn, longest first,
// is cut out of the text the longer ones left, leftmost occurrence first.
// Where special tokens overlap this can differ from a leftmost-longest
// scan: with "<ab>" and "b><c>", "<ab><c>" is "<a" then "b><c>".
type specialTable struct {
	ids map[string]int32
	// lengths[b] lists the lengths of the special tokens that start with
	// byte b, so that finding the tokens at a position costs a few map
	// lookups even where thousands of tokens start alike (Gemma's
	// "<unused...>").
	lengths [256][]int
	ordered []addedToken // longest first; ties by id (llama.cpp's sort is not stable)
}

func (st *specialTable) add(text string, id int32) {
	if st.ids == nil {
		st.ids = map[string]int32{}
	}
	if _, dup := st.ids[text]; dup {
		return
	}
	st.ids[text] = id
	if !slices.Contains(st.lengths[text[0]], len(text)) {
		st.lengths[text[0]] = append(st.lengths[text[0]], len(text))
	}
	st.ordered = append(st.ordered, addedToken{content: text, id: id})
}

// finish orders the tokens; call it once after the last add.
func (st *specialTable) finish() {
	sort.SliceStable(st.ordered, func(a, b int) bool { return len(st.ordered[a].content) > len(st.ordered[b].content) })
}

// split calls f for each stretch of text between special tokens, passing
// the special token that ends it (or -1 for the last stretch).
func (st *specialTable) split(text string, f func(raw string, specialID int32)) {
	// Where each special token occurs (overlaps included).
	var hits map[int32][]int
	for i := 0; i < len(text); i++ {
		for _, n := range st.lengths[text[i]] {
			if i+n > len(text) {
				continue
			}
			if id, ok := st.ids[text[i:i+n]]; ok {
				if hits == nil {
					hits = map[int32][]int{}
				}
				hits[id] = append(hits[id], i)
			}
		}
	}
	if hits == nil {
		f(text, -1)
		return
	}
	// cuts are the special tokens cut out, by where they start; taken
	// marks the bytes they cover.
	var cuts []int
	at := map[int]addedToken{}
	taken := make([]bool, len(text))
	for _, s := range st.ordered {
		for _, start := range hits[s.id] {
			end := start + len(s.content)
			if slices.Contains(taken[start:end], true) {
				continue
			}
			for j := start; j < end; j++ {
				taken[j] = true
			}
			cuts = append(cuts, start)
			at[start] = s
		}
	}
	slices.Sort(cuts)
	start := 0
	for _, i := range cuts {
		f(text[start:i], at[i].id)
		start = i + len(at[i].content)
	}
	f(text[start:], -1)
}
