package cli

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// urfave/cli v2 computes a flag's names with a regular expression (FlagNames) every time it is
// asked, and asks for every flag's names whenever it looks one flag up (IsSet, lookupFlag), which
// it does for each flag of the command (runFlagActions): a few hundred regexp runs per command
// line, half of the time urfave/cli takes to parse one. The wrappers below answer Names from a
// slice computed once; everything else is the wrapped flag's. They are pointers because
// urfave/cli compares flags with ==.

type stringFlag struct {
	*cli.StringFlag
	names []string
}

func (f *stringFlag) Names() []string { return f.names }

type stringSliceFlag struct {
	*cli.StringSliceFlag
	names []string
}

func (f *stringSliceFlag) Names() []string { return f.names }

type boolFlag struct {
	*cli.BoolFlag
	names []string
}

func (f *boolFlag) Names() []string { return f.names }

type intFlag struct {
	*cli.IntFlag
	names []string
}

func (f *intFlag) Names() []string { return f.names }

type durationFlag struct {
	*cli.DurationFlag
	names []string
}

func (f *durationFlag) Names() []string { return f.names }

// cacheNames wraps the flags of cmds and their subcommands in place.
func cacheNames(cmds []*cli.Command) {
	for _, c := range cmds {
		for i, f := range c.Flags {
			c.Flags[i] = cachedNames(f)
		}
		cacheNames(c.Subcommands)
	}
}

// cachedNames wraps f when it is of a type urfave/cli computes the names of each time.
func cachedNames(f cli.Flag) cli.Flag {
	switch t := f.(type) {
	case *cli.StringFlag:
		return &stringFlag{t, names(t, t.Name, t.Aliases)}
	case *cli.StringSliceFlag:
		return &stringSliceFlag{t, names(t, t.Name, t.Aliases)}
	case *cli.BoolFlag:
		return &boolFlag{t, names(t, t.Name, t.Aliases)}
	case *cli.IntFlag:
		return &intFlag{t, names(t, t.Name, t.Aliases)}
	case *cli.DurationFlag:
		return &durationFlag{t, names(t, t.Name, t.Aliases)}
	}
	return f
}

// names is what urfave/cli's FlagNames makes of name and aliases: each cut at its first comma or
// space (a v1 spelling), which gaffer's names never hold; when one does, f computes them.
func names(f cli.Flag, name string, aliases []string) []string {
	out := append(make([]string, 0, 1+len(aliases)), name)
	out = append(out, aliases...)
	for _, n := range out {
		if strings.ContainsAny(n, ", ") {
			return f.Names()
		}
	}
	return out
}
