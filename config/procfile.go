package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// loadProcfile reads NAME: COMMAND lines. Each is a process with shell = true and the defaults,
// plus the variables of the .env file beside it.
func loadProcfile(path string, data []byte) (*Config, error) {
	errs := &Errors{}
	src := &source{files: []string{path}, origins: map[string]origin{}}
	cfg := &Config{File: path, Sources: []string{path}, Settings: DefaultSettings(), src: src}
	first := map[string]int{}
	tooMany := false // reported once, at the first process past MaxTotalInstances
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) {
			errs.add(Error{File: path, Line: n, Msg: fmt.Sprintf(format, args...)})
		}
		name, cmd, ok := strings.Cut(line, ":")
		cmd = strings.TrimSpace(cmd)
		switch {
		case !ok:
			bad("malformed line %q: want NAME: COMMAND", line)
		case !validName(name):
			bad("bad process name %q: use letters, digits, _ and - (a dot is reserved for instance names such as web.2)", name)
		case name == "gaffer":
			bad(`process name "gaffer" is reserved for gaffer's own output lines`)
		case first[name] != 0:
			bad("process %q is already defined on line %d", name, first[name])
		case cmd == "":
			bad("process %q: empty command", name)
		case len(cfg.Processes) >= MaxTotalInstances:
			if !tooMany {
				bad("process %q: more than %d processes in one file", name, MaxTotalInstances)
				tooMany = true
			}
		default:
			first[name] = n
			k := keyPath{"process", name}
			for _, kk := range []keyPath{k, k.with("cmd"), k.with("shell")} {
				src.origins[kk.id()] = origin{file: path, line: n}
			}
			p := defaultProcess(name, cfg.Settings.Grace)
			p.Line, p.Shell, p.Cmd = n, true, []string{"/bin/sh", "-c", cmd}
			cfg.Processes = append(cfg.Processes, p)
		}
	}
	if len(cfg.Processes) == 0 && len(errs.List) == 0 {
		errs.add(Error{File: path, Msg: "no processes: add lines NAME: COMMAND"})
	}
	envPath := filepath.Join(filepath.Dir(path), ".env")
	env, envLines, envErrs := readDotenv(envPath)
	errs.List = append(errs.List, envErrs...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	for i, p := range cfg.Processes {
		for k, v := range env {
			p.Env[k] = v
			src.origins[keyPath{"process", p.Name, "env", k}.id()] = origin{file: envPath, line: envLines[k]}
		}
		cfg.Processes[i] = p
	}
	return cfg, nil
}

// readDotenv reads K=V lines: blank lines and # comments skipped, an optional "export " prefix,
// V optionally in single quotes (literal) or double quotes (\n \t \r \" \\ escapes). An unquoted
// V ends before " #", a trailing comment. A missing file is no file. lines has the line of each
// variable (the last one that set it).
func readDotenv(path string) (env map[string]string, lines map[string]int, errs []Error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, []Error{{File: path, Msg: fmt.Sprintf("cannot read: %v", err), Err: err}}
	}
	env, lines = map[string]string{}, map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, err := dotenvLine(line)
		if err != nil {
			errs = append(errs, Error{File: path, Line: i + 1, Msg: err.Error()})
			continue
		}
		env[k], lines[k] = v, i+1
	}
	return env, lines, errs
}

func dotenvLine(line string) (key, value string, err error) {
	if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		line = strings.TrimSpace(rest)
	}
	k, v, ok := strings.Cut(line, "=")
	k = strings.TrimSpace(k)
	if !ok {
		return "", "", fmt.Errorf("malformed line %q: want K=V", line)
	}
	if !envName(k) {
		return "", "", fmt.Errorf("bad variable name %q: use letters, digits and _, not starting with a digit", k)
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return k, "", nil
	}
	switch q := v[0]; q {
	case '\'', '"':
		val, rest, ok := unquote(v[1:], q)
		rest = strings.TrimSpace(rest)
		if !ok {
			return "", "", fmt.Errorf("%s: unterminated %c quote", k, q)
		}
		if rest != "" && !strings.HasPrefix(rest, "#") {
			return "", "", fmt.Errorf("%s: unexpected %q after the closing quote", k, rest)
		}
		return k, val, nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if i := strings.Index(v, "\t#"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return k, v, nil
}

// unquote reads s up to the closing quote q, returning the value and what follows the quote.
func unquote(s string, q byte) (val, rest string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), s[i+1:], true
		case c == '\\' && q == '"' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\':
				b.WriteByte(s[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// envName reports whether s is a portable variable name: [A-Za-z_][A-Za-z0-9_]*.
func envName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
