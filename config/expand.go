package config

import (
	"errors"
	"fmt"
	"strings"
)

// Environment in values: ${VAR}, ${VAR:-default} and ${VAR:?message} in any string value of
// gaffer.toml are replaced at load time from gaffer's own environment; $$ is a literal $, and a $
// followed by anything else stays as it is, so $VAR (without braces) keeps its meaning where
// something expands it later: the shell of a shell = true command. args are the exception: they
// keep the expansion they always had, $VAR and ${VAR} from the process's own environment at each
// start (its env, over gaffer's unless clear_env), and are left alone here.

// unsetError is a ${VAR} whose VAR is not in the environment.
type unsetError struct{ name string }

func (e unsetError) Error() string {
	return fmt.Sprintf("%s is not set (${%s:-default} gives a default)", e.name, e.name)
}

// expand replaces ${...} in every string value of a merged document, in place, reporting each
// value that cannot be expanded at its file and line (and leaving it as it is). A process a
// layer disabled is not expanded: its variables need not be set. Nothing happens without a
// lookup (FromDict).
func (d *decoder) expand(root map[string]any) {
	if d.lookup == nil {
		return
	}
	d.expandIn(nil, root)
}

func (d *decoder) expandIn(k keyPath, v any) any {
	switch x := v.(type) {
	case string:
		out, err := expandString(x, d.lookup)
		if err == nil {
			return out
		}
		d.errorf(k, "%v", err)
		return x
	case map[string]any:
		for key, e := range x {
			kk := k.with(key)
			if len(kk) == 2 && kk[0] == "process" && isDisabled(e) {
				continue
			}
			if len(kk) == 3 && kk[0] == "process" && kk[2] == "args" {
				continue // expanded at start from the process's environment (see above)
			}
			x[key] = d.expandIn(kk, e)
		}
	case []any:
		for i, e := range x {
			x[i] = d.expandIn(k.index(i), e)
		}
	}
	return v
}

// isDisabled reports whether v is a process table with disabled = true.
func isDisabled(v any) bool {
	t, ok := v.(map[string]any)
	return ok && t["disabled"] == true
}

// expandString replaces ${VAR}, ${VAR:-default} and ${VAR:?message} in s by lookup, and $$ by $.
// A default or message may hold references itself; it is expanded only when used, as in sh.
func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	e := expander{lookup: lookup}
	out, _, err := e.text(s, false, true)
	return out, err
}

type expander struct {
	lookup func(string) (string, bool)
}

// text expands s up to its end or, inside a reference (inBrace), up to the } that closes it, and
// returns what follows that }. Without eval it only checks the syntax.
func (e expander) text(s string, inBrace, eval bool) (out, rest string, err error) {
	var b strings.Builder
	for len(s) > 0 {
		c := s[0]
		switch {
		case inBrace && c == '}':
			return b.String(), s[1:], nil
		case c == '$' && len(s) > 1 && s[1] == '$':
			b.WriteByte('$')
			s = s[2:]
		case c == '$' && len(s) > 1 && s[1] == '{':
			val, after, err := e.reference(s[2:], eval)
			if err != nil {
				return "", "", err
			}
			b.WriteString(val)
			s = after
		default:
			b.WriteByte(c)
			s = s[1:]
		}
	}
	if inBrace {
		return "", "", errors.New(`"${" without a closing "}"`)
	}
	return b.String(), "", nil
}

// reference expands what follows a ${ and returns what follows its closing }.
func (e expander) reference(s string, eval bool) (val, rest string, err error) {
	n := 0
	for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= '0' && s[n] <= '9') {
		n++
	}
	name, after := s[:n], s[n:]
	switch {
	case !strings.Contains(s, "}"):
		return "", "", errors.New(`"${" without a closing "}"`)
	case name == "":
		return "", "", fmt.Errorf("${%s: want a variable name after ${ (write $${ for a literal ${)", cut(s))
	case !envName(name):
		return "", "", fmt.Errorf("bad variable name %q: use letters, digits and _, not starting with a digit", name)
	}
	value, set := "", false
	if eval {
		value, set = e.lookup(name)
	}
	switch {
	case strings.HasPrefix(after, "}"):
		if eval && !set {
			return "", "", unsetError{name}
		}
		return value, after[1:], nil
	case strings.HasPrefix(after, ":-"):
		use := eval && value == ""
		def, rest, err := e.text(after[2:], true, use)
		if err != nil || !use {
			return value, rest, err
		}
		return def, rest, nil
	case strings.HasPrefix(after, ":?"):
		use := eval && value == ""
		msg, rest, err := e.text(after[2:], true, use)
		if err != nil || !use {
			return value, rest, err
		}
		if msg == "" {
			msg = "not set or empty"
		}
		return "", "", fmt.Errorf("%s: %s", name, msg)
	}
	return "", "", fmt.Errorf("${%s: want ${%s}, ${%s:-default} or ${%s:?message}", cut(s), name, name, name)
}

// cut is s up to and with its first }, for messages.
func cut(s string) string {
	if i := strings.IndexByte(s, '}'); i >= 0 {
		return s[:i+1]
	}
	return s
}
