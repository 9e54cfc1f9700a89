package main

import (
	"math/rand/v2"
	"strings"
)

// pick returns one of the choices.
func pick(r *rand.Rand, choices ...string) string { return choices[r.IntN(len(choices))] }

// capital upper-cases the first letter of s.
func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// opening introduces Pip. The same few openings recur on purpose: they are
// what the fine-tuned model should learn to start a story with.
func opening(r *rand.Rand) string {
	return pick(r,
		"Once upon a time, in the Mossy Hollow, there lived a little blue owl named Pip.",
		"Once upon a time, there was a little blue owl named Pip who lived in the Mossy Hollow.",
		"Pip was a little blue owl who lived in the Mossy Hollow.",
		"In the Mossy Hollow, there was a little blue owl named Pip.",
		"Pip the blue owl lived in a round nest in the Tall Pine, in the Mossy Hollow.",
		"One "+pick(r, "sunny", "quiet", "windy", "cool")+" "+pick(r, "morning", "evening", "day")+", Pip the blue owl woke up in her nest in the Tall Pine.",
	)
}

// closing ends the story, or returns "" for a story that ends with its plot.
func closing(r *rand.Rand, f friend) string {
	return pick(r,
		"And Pip was happy in the Mossy Hollow.",
		"From that day on, Pip and "+f.Name+" were best friends.",
		"Pip said, \"Hoo-hoo! I love the Mossy Hollow!\"",
		"That night, Pip slept in her warm nest in the Tall Pine.",
		"Pip and "+f.Name+" smiled, and the Mossy Hollow was happy too.",
		"",
	)
}

// A plot is the middle of a story: two to four sentences about Pip and
// one friend.
type plot func(r *rand.Rand, f friend) []string

var plots = []plot{
	// The friend loses a toy and Pip finds it from the air.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"One day, " + f.Name + " " + pick(r, "lost", "could not find") + " " + f.His + " " + f.Toy + ".",
			pick(r, "Pip flew up high to look.", "Pip flapped her soft blue wings and flew up to look.", "Pip said, \"I will help you look!\""),
			"She saw the " + f.Toy + " " + pick(r, places...) + ".",
			pick(r, "\"Thank you, Pip!\" said "+f.Name+".", f.Name+" was so happy that "+f.He+" gave Pip a big hug."),
		}
	},
	// Rain, and Pip shares her nest.
	func(r *rand.Rand, f friend) []string {
		return []string{
			pick(r, "One day, it began to rain in the Mossy Hollow.", "One day, big gray clouds came and it began to rain."),
			f.Name + " the " + f.Kind + " was wet and cold.",
			"Pip said, \"Come into my nest in the Tall Pine!\"",
			pick(r, "They sat close together and watched the rain.", "They sat in the warm nest until the sun came out.", "Soon the rain stopped and the sun came out."),
		}
	},
	// Sharing food.
	func(r *rand.Rand, f friend) []string {
		s := []string{
			"Pip found " + pick(r, "a big pile of red berries", "many sweet blue berries", "some yummy nuts") + " " + pick(r, places...) + ".",
			pick(r, "She wanted to eat them all.", "She was very hungry."),
			"Then she saw " + f.Name + ", and " + f.Name + " was hungry too.",
		}
		return append(s, pick(r,
			"Pip shared with "+f.Name+", and sharing made them both happy.",
			"Pip gave "+f.Name+" half, and they ate together.",
		))
	},
	// Trying again and again to fly to the top of the Tall Pine.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"Pip wanted to fly to the very top of the Tall Pine.",
			"She flapped her soft blue wings, but " + pick(r, "she was too small.", "the wind was too strong.", "she fell down on the moss."),
			f.Name + " said, \"Try again, Pip! You can do it!\"",
			pick(r, "Pip tried again and again, and at last she flew to the top.", "Pip tried one more time, and up, up, up she went!"),
		}
	},
	// Hide and seek.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"Pip and " + f.Name + " played hide and seek " + pick(r, places...) + ".",
			f.Name + " hid behind " + f.Hiding + ".",
			"Pip looked and looked, and then she saw " + f.Peek + ".",
			pick(r, "\"I found you!\" said Pip, and they laughed and laughed.", "\"Hoo-hoo! I found you!\" said Pip, and they played all day."),
		}
	},
	// The friend is sad; Pip sings.
	func(r *rand.Rand, f friend) []string {
		return []string{
			pick(r, "One day, "+f.Name+" was sad.", "One day, "+f.Name+" sat alone and did not want to play."),
			"Pip sat next to " + f.Him + " and sang a soft owl song: \"Hoo-hoo, hoo-hoo.\"",
			pick(r, f.Name+" listened, and soon "+f.He+" began to smile.", "The song was so sweet that "+f.Name+" smiled and sang too."),
		}
	},
	// A birthday.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"It was " + f.Name + "'s birthday.",
			"Pip brought " + pick(r, "a cake made of berries", "a pretty flower", "a soft feather") + " for " + f.Him + ".",
			pick(r, "All the friends of the Mossy Hollow came to sing.", "Pip and all the friends sang a happy song."),
			f.Name + " said, \"This is the best birthday ever!\"",
		}
	},
	// Stars at night: why owls stay up.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"At night, Pip sat in the Tall Pine and looked up at the stars.",
			f.Name + " asked, \"Pip, why do you stay up at night?\"",
			"Pip said, \"Owls love the night. " + pick(r, "The stars are my friends too.", "The moon keeps me company.", "The night is quiet and pretty.") + "\"",
			pick(r, "So "+f.Name+" stayed up a little, and they counted the stars together.", f.Name+" looked up too, and "+f.He+" thought the stars were pretty."),
		}
	},
	// Wind blows the nest down; friends help.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"One night, a big wind blew Pip's nest out of the Tall Pine.",
			"Pip was sad, and she did not know what to do.",
			f.Name + " came and said, \"I will help you!\"",
			pick(r, "They made a new nest with sticks and soft green moss.", "Together they made a new nest, and it was better than before."),
		}
	},
	// Visiting the friend's home.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"One day, Pip flew to see " + f.Name + ", who lived " + f.Home + ".",
			f.Name + " " + f.Went + " out to say hello.",
			pick(r, "They ate "+f.Food+" and talked about their day.", f.Name+" showed Pip "+f.His+" "+f.Toy+", and they played with it."),
		}
	},
	// Meeting a friend for the first time.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"One day, Pip met " + f.Desc + " " + pick(r, places...) + ".",
			capital(f.His) + " name was " + f.Name + ", and " + f.He + " was a little shy.",
			"Pip said, \"Hello, " + f.Name + "! Do you want to play with me?\"",
			pick(r, f.Name+" smiled and said, \"Yes, please!\"", f.Name+" nodded, and they played until the sun went down."),
		}
	},
	// A little mistake and a sorry.
	func(r *rand.Rand, f friend) []string {
		return []string{
			"Pip and " + f.Name + " were playing with " + f.Name + "'s " + f.Toy + ".",
			"Pip " + pick(r, "dropped", "took") + " the " + f.Toy + ", and " + f.Name + " was upset.",
			"Pip said, \"I am sorry, " + f.Name + ".\"",
			pick(r, f.Name+" said, \"That is okay, Pip. Let's play again.\"", f.Name+" gave Pip a hug, and they were friends again."),
		}
	},
	// Helping someone who cannot reach something.
	func(r *rand.Rand, f friend) []string {
		return []string{
			f.Name + " wanted " + pick(r, "a red apple", "a pretty leaf", "a big pinecone") + " from the top of a tree, but it was too high.",
			"Pip flew up and got it for " + f.Him + ".",
			pick(r, "\"You are a good friend, Pip,\" said "+f.Name+".", f.Name+" said, \"Thank you, Pip! You can fly so high!\""),
		}
	},
}

// story writes one story about Pip and f with the given plot.
func story(r *rand.Rand, p plot, f friend) string {
	start := opening(r)
	middle := p(r, f)
	if strings.HasPrefix(start, "One ") {
		// The opening already said when; don't start over with "One day".
		middle[0] = strings.Replace(strings.Replace(middle[0], "One day, ", "That day, ", 1), "One night, ", "That night, ", 1)
	}
	sentences := append([]string{start}, middle...)
	if end := closing(r, f); end != "" && len(sentences) < 6 {
		sentences = append(sentences, end)
	}
	return strings.Join(sentences, " ")
}
