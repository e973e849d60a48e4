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

// Find picks the config sources: explicit (each -c PATH), else $GAFFER_CONFIG (a colon-separated
// list), else DIR/gaffer.toml, else DIR/Procfile. A path is a file or a directory (of *.toml
// layers). A path named explicitly or by the variable must exist; gaffer never falls back from a
// file it was told to read.
func Find(explicit []string, getenv func(string) string, dir string) ([]string, error) {
	named := explicit
	if len(named) == 0 && getenv != nil {
		named = SplitList(getenv("GAFFER_CONFIG"))
	}
	if len(named) > 0 {
		for _, path := range named {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("config file %s: %w", path, pathErr(err))
			}
		}
		return named, nil
	}
	for _, name := range []string{"gaffer.toml", "Procfile"} {
		path := filepath.Join(dir, name)
		if err := isFile(path); err == nil {
			return []string{path}, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	return nil, fmt.Errorf("no config file: give -c FILE or $GAFFER_CONFIG, or put gaffer.toml or Procfile in %s", dir)
}

// SplitList reads $GAFFER_CONFIG: paths separated by colons, as in $PATH; empty ones are skipped.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ":") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return pathErr(err)
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}

// pathErr is the cause of a failed file operation without the path, which the caller names.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Load reads and validates a config file with every default filled in. The file is a Procfile
// when its base name is Procfile or starts with "Procfile." (Procfile.dev), or when it is not
// valid TOML but every line that is not blank or a # comment reads NAME: COMMAND; otherwise it is
// gaffer.toml. A Procfile's processes get the .env file in the same directory, if there is one.
// Any problem makes the error an *Errors listing all of them. Load(path) is LoadLayers([path]).
func Load(path string) (*Config, error) {
	return LoadLayers([]string{path})
}

// LoadLayers reads the layers of a configuration, each path a TOML file or a directory whose
// *.toml files are read in lexical order (dot files skipped), and merges them: a later layer adds
// processes and overrides keys of a process of the same name (and of [settings]) key by key;
// tables such as env merge key by key, arrays and everything else replace; a process a layer
// sets disabled = true is left out. ${VAR}, ${VAR:-default} and ${VAR:?message} in string
// values are then replaced from gaffer's environment ($$ is a $), and the result validated. A
// Procfile must be the only source. Any problem makes the error an *Errors listing all of them,
// each at the file and line that set the value.
func LoadLayers(paths []string) (*Config, error) {
	return loadLayers(paths, spawn.SystemUsers(), os.LookupEnv)
}

func load(path string, users spawn.Users) (*Config, error) {
	return loadLayers([]string{path}, users, os.LookupEnv)
}

func loadLayers(paths []string, users spawn.Users, lookup func(string) (string, bool)) (*Config, error) {
	files, errs := layerFiles(paths)
	if err := errs.err(); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, &Errors{List: []Error{{Msg: fmt.Sprintf("no config file: no *.toml in %s", strings.Join(paths, ", "))}}}
	}
	var layers []layer
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			errs.add(Error{File: path, Msg: "cannot read: " + pathErr(err).Error(), Err: err})
			continue
		}
		procfile := isProcfileName(path)
		root := map[string]any{}
		var syntax error
		if !procfile {
			syntax = toml.Unmarshal(data, &root)
			procfile = syntax != nil && looksLikeProcfile(data)
		}
		switch {
		case procfile && len(files) == 1:
			return loadProcfile(path, data)
		case procfile:
			errs.add(Error{File: path, Msg: fmt.Sprintf("a Procfile must be the only config source, not one of %d", len(files))})
		case syntax != nil:
			errs.add(syntaxError(path, data, syntax))
		default:
			layers = append(layers, layer{file: path, root: root, lines: lineIndex(data)})
		}
	}
	// After a syntax error nothing else can be trusted: those are the problems to report.
	errs.files = files
	if err := errs.err(); err != nil {
		return nil, err
	}
	root, src := merge(layers)
	d := &decoder{src: src, users: users, lookup: lookup}
	d.errs.files = files
	d.expand(root)
	cfg := d.document(root)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// syntaxError is a file's TOML syntax error at its line.
func syntaxError(path string, data []byte, err error) Error {
	e := Error{File: path, Msg: "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: "), Err: err}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		e.Line, _ = de.Position()
		e.Msg += quoteHint(data, e.Line)
	} else {
		e.Line = redefinition(data)
	}
	return e
}

// layerFiles lists the files of paths: a file as it is, a directory as its *.toml files in
// lexical order. Dot files (editor and package manager leftovers such as .x.toml.swp or
// .#x.toml) and directories are skipped. A directory without any is no error.
func layerFiles(paths []string) ([]string, Errors) {
	var files []string
	var errs Errors
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil {
			errs.add(Error{File: path, Msg: "cannot read: " + pathErr(err).Error(), Err: err})
			continue
		}
		if !st.IsDir() {
			files = append(files, path)
			continue
		}
		entries, err := os.ReadDir(path) // sorted by name
		if err != nil {
			errs.add(Error{File: path, Msg: "cannot read: " + pathErr(err).Error(), Err: err})
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".toml") {
				continue
			}
			full := filepath.Join(path, name)
			if st, err := os.Stat(full); err == nil && st.IsDir() {
				continue
			}
			files = append(files, full)
		}
	}
	return files, errs
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
