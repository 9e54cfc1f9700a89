package main

// friend is one of Pip's friends in the Mossy Hollow, with the words a
// story needs to talk about them.
type friend struct {
	Name   string
	Kind   string // "mouse"
	Desc   string // "a little gray mouse"
	He     string // subject pronoun, lower case
	His    string // possessive
	Him    string // object pronoun
	Home   string // "under the old log"
	Went   string // how they get about: "ran", "hopped"
	Food   string // what they like to eat
	Toy    string // the thing they love and lose
	Hiding string // where they hide in hide and seek
	Peek   string // what sticks out when they hide
}

// The recurring cast. Pip is always the owl; the friends come back story
// after story so a small model can learn who they are.
var friends = []friend{
	{
		Name: "Dot", Kind: "mouse", Desc: "a little gray mouse",
		He: "she", His: "her", Him: "her",
		Home: "under the old log", Went: "ran",
		Food: "seeds", Toy: "red ball",
		Hiding: "a big leaf", Peek: "a pink tail",
	},
	{
		Name: "Fig", Kind: "frog", Desc: "a green frog",
		He: "he", His: "his", Him: "him",
		Home: "by the Little Pond", Went: "hopped",
		Food: "bugs", Toy: "shiny stone",
		Hiding: "the tall grass", Peek: "two green feet",
	},
	{
		Name: "Bramble", Kind: "bear", Desc: "a big brown bear",
		He: "he", His: "his", Him: "him",
		Home: "in a cave by the big rock", Went: "walked",
		Food: "honey", Toy: "blue blanket",
		Hiding: "a big bush", Peek: "a round brown ear",
	},
	{
		Name: "Tilly", Kind: "bee", Desc: "a tiny yellow bee",
		He: "she", His: "her", Him: "her",
		Home: "in the flowers by the berry bushes", Went: "buzzed",
		Food: "sweet flowers", Toy: "little yellow cup",
		Hiding: "a red flower", Peek: "a tiny wing",
	},
}

// Places in the Mossy Hollow, used where a story needs somewhere.
var places = []string{
	"by the Little Pond",
	"under the old log",
	"near the berry bushes",
	"on the soft green moss",
	"behind the big rock",
	"at the foot of the Tall Pine",
}
