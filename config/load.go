package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gaffer/spawn"

	"github.com/pelletier/go-toml/v2"
)

// Find picks the config file: explicit (-c FILE, or $GAFFER_CONFIG through the flag), else
// $GAFFER_CONFIG, else DIR/gaffer.toml, else DIR/Procfile. A file named explicitly or by the
// variable must exist; gaffer never falls back from a file it was told to read.
func Find(explicit string, getenv func(string) string, dir string) (string, error) {
	named := explicit
	if named == "" && getenv != nil {
		named = getenv("GAFFER_CONFIG")
	}
	if named != "" {
		if err := isFile(named); err != nil {
			return "", fmt.Errorf("config file %s: %w", named, err)
		}
		return named, nil
	}
	for _, name := range []string{"gaffer.toml", "Procfile"} {
		path := filepath.Join(dir, name)
		if err := isFile(path); err == nil {
			return path, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("config file %s: %w", path, err)
		}
	}
	return "", fmt.Errorf("no config file: give -c FILE or $GAFFER_CONFIG, or put gaffer.toml or Procfile in %s", dir)
}

func isFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}

// Load reads and validates a config file with every default filled in. The file is a Procfile
// when its base name is Procfile or starts with "Procfile." (Procfile.dev), or when it is not
// valid TOML but every line that is not blank or a # comment reads NAME: COMMAND; otherwise it is
// gaffer.toml. A Procfile's processes get the .env file in the same directory, if there is one.
// Any problem makes the error an *Errors listing all of them.
func Load(path string) (*Config, error) {
	return load(path, spawn.SystemUsers())
}

func load(path string, users spawn.Users) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, &Errors{List: []Error{{File: path, Msg: "cannot read: " + msg, Err: err}}}
	}
	if isProcfileName(path) {
		return loadProcfile(path, data)
	}
	root := map[string]any{}
	if err := toml.Unmarshal(data, &root); err != nil {
		if looksLikeProcfile(data) {
			return loadProcfile(path, data)
		}
		e := Error{File: path, Msg: "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: "), Err: err}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			e.Line, _ = de.Position()
			e.Msg += quoteHint(data, e.Line)
		} else {
			e.Line = redefinition(data)
		}
		// After a syntax error nothing else can be trusted: this is the one problem to report.
		return nil, &Errors{List: []Error{e}}
	}
	d := &decoder{src: &source{file: path, lines: lineIndex(data)}, users: users}
	cfg := d.document(root)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	cfg.Sources = []string{path}
	return cfg, nil
}

func isProcfileName(path string) bool {
	base := filepath.Base(path)
	return base == "Procfile" || strings.HasPrefix(base, "Procfile.")
}

// looksLikeProcfile reports whether data has at least one NAME: COMMAND line and nothing but
// those, blank lines and # comments.
func looksLikeProcfile(data []byte) bool {
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || !validName(name) {
			return false
		}
		n++
	}
	return n > 0
}

// quoteHint explains go-toml's "incomplete number" or "expected 'true'" for the common mistake
// of a string without quotes: restart = always.
func quoteHint(data []byte, line int) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	_, v, ok := strings.Cut(lines[line-1], "=")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, "#")
	v = strings.TrimSpace(v)
	if !validName(v) || !(v[0] >= 'a' && v[0] <= 'z' || v[0] >= 'A' && v[0] <= 'Z') || v == "true" || v == "false" || v == "inf" || v == "nan" {
		return ""
	}
	return fmt.Sprintf(" (a string needs quotes: %q)", v)
}
