package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"
)

// onUsageError turns a flag parsing error of urfave/cli into one line in plain words:
//
//	unknown flag --platfrom; did you mean --platform? (see ocipull --help)
//	--output needs a value (see ocipull pull --help)
//	--concurrency "abc": not a whole number (see ocipull --help)
func onUsageError(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	return usageError{fmt.Errorf("%s (see %s --help)", flagErrorText(cmd, err), cmd.FullName())}
}

// The messages urfave/cli builds its flag errors from. It returns them as plain
// fmt.Errorf values, with no type or sentinel to match, so these prefixes are the
// only handle on them (urfave's own suggestions read them the same way); an error
// matching none of them is printed as it is.
const (
	urfaveUnknownFlag  = "flag provided but not defined: -"
	urfaveNeedsValue   = "flag needs an argument: "
	urfaveInvalidValue = "invalid value "
)

// flagErrorText says what err, a flag parsing error of cmd, means.
func flagErrorText(cmd *cli.Command, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, urfaveUnknownFlag); ok {
		text := "unknown flag " + dashes(name)
		if s := suggest(name, flagNames(cmd)); s != "" {
			text += "; did you mean " + dashes(s) + "?"
		}
		return text
	}
	if name, ok := strings.CutPrefix(msg, urfaveNeedsValue); ok {
		return dashes(strings.TrimLeft(name, "-")) + " needs a value"
	}
	if rest, ok := strings.CutPrefix(msg, urfaveInvalidValue); ok {
		// invalid value "abc" for flag -concurrency: strconv.ParseInt: ...
		if val, err := strconv.QuotedPrefix(rest); err == nil {
			if name, _, ok := strings.Cut(strings.TrimPrefix(rest[len(val):], " for flag -"), ": "); ok {
				why := "invalid value"
				switch lookupFlag(cmd, name).(type) {
				case *cli.IntFlag:
					why = "not a whole number"
				case *cli.BoolFlag:
					why = "not true or false"
				}
				return dashes(name) + " " + val + ": " + why
			}
		}
	}
	return msg
}

// dashes spells a flag name as typed on a command line: "-o", "--output".
func dashes(name string) string {
	name = strings.TrimLeft(name, "-")
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// lookupFlag returns the flag of cmd or its ancestors called name; nil if none.
func lookupFlag(cmd *cli.Command, name string) cli.Flag {
	for _, c := range cmd.Lineage() {
		for _, f := range c.Flags {
			for _, n := range f.Names() {
				if n == name {
					return f
				}
			}
		}
	}
	return nil
}

// flagNames lists the names of the flags cmd accepts, its ancestors' included.
func flagNames(cmd *cli.Command) []string {
	var names []string
	for _, c := range cmd.Lineage() {
		for _, f := range c.Flags {
			names = append(names, f.Names()...)
		}
	}
	return names
}

// commandNames lists the names of cmd's visible subcommands.
func commandNames(cmd *cli.Command) []string {
	var names []string
	for _, c := range cmd.Commands {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	return names
}

// suggest returns the candidate closest to typed when it is close enough to be a
// typo (an edit distance of at most a third of the word, at least 1, or typed is
// the start of it), else "". Of two as close, the one starting like typed wins.
func suggest(typed string, candidates []string) string {
	typed = strings.ToLower(typed)
	best, bestDist := "", -1
	for _, c := range candidates {
		if len(typed) >= 2 && strings.HasPrefix(c, typed) {
			return c
		}
		d := editDistance(typed, c)
		sameStart := typed != "" && c != "" && typed[0] == c[0] && best != "" && best[0] != c[0]
		if bestDist < 0 || d < bestDist || (d == bestDist && sameStart) {
			best, bestDist = c, d
		}
	}
	if bestDist >= 0 && bestDist <= max(1, len(typed)/3) {
		return best
	}
	return ""
}

// editDistance is the Damerau–Levenshtein distance (optimal string alignment) of a
// and b: the insertions, deletions, substitutions and swaps of neighbours that turn
// one into the other.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// unknownCommand is the usage error for a command name cmd does not have.
func unknownCommand(cmd *cli.Command, name string) error {
	if s := suggest(name, commandNames(cmd)); s != "" {
		return usagef("unknown command %q; did you mean %q?", name, s)
	}
	return usagef("unknown command %q (see %s --help)", name, cmd.FullName())
}
