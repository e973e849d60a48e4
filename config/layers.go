package config

// layer is one parsed TOML file of a configuration.
type layer struct {
	file  string
	root  map[string]any
	lines map[string]int // keyPath.id() -> line, from lineIndex
}

// merge folds the layers into one document, first to last, and records where each value came
// from. Tables merge key by key ([settings], [process], each [process.NAME], env); any other
// value (arrays included) replaces the one before, with everything below it. The layers' trees
// become part of the result.
func merge(layers []layer) (map[string]any, *source) {
	src := &source{origins: map[string]origin{}}
	root := map[string]any{}
	for i, l := range layers {
		src.files = append(src.files, l.file)
		m := merger{src: src, layer: i, file: l.file, lines: l.lines}
		m.table(root, l.root, nil)
	}
	return root, src
}

// merger merges one layer.
type merger struct {
	src   *source
	layer int
	file  string
	lines map[string]int
}

func (m merger) table(dst, from map[string]any, k keyPath) {
	for key, v := range from {
		kk := k.with(key)
		if ft, ok := v.(map[string]any); ok {
			if dt, ok := dst[key].(map[string]any); ok {
				// A table keeps the origin of the layer that made it: its [header] names it.
				if _, seen := m.src.origins[kk.id()]; !seen {
					m.set(kk)
				}
				m.table(dt, ft, kk)
				continue
			}
		}
		if old, ok := dst[key]; ok {
			m.forget(kk, old)
		}
		dst[key] = v
		m.record(kk, v)
	}
}

// set records this layer's line of k, when the layer has one.
func (m merger) set(k keyPath) {
	if line, ok := m.lines[k.id()]; ok {
		m.src.origins[k.id()] = origin{layer: m.layer, file: m.file, line: line}
	}
}

// record sets the origin of k and of everything in v to this layer.
func (m merger) record(k keyPath, v any) { eachPath(k, v, m.set) }

// forget drops the origins of k and of everything in v, a value being replaced: an array of
// three replaced by one of two must not keep the third element's line.
func (m merger) forget(k keyPath, v any) {
	eachPath(k, v, func(k keyPath) { delete(m.src.origins, k.id()) })
}

// eachPath calls fn with k, then with the path of every table entry and array element in v.
func eachPath(k keyPath, v any, fn func(keyPath)) {
	fn(k)
	switch x := v.(type) {
	case map[string]any:
		for key, e := range x {
			eachPath(k.with(key), e, fn)
		}
	case []any:
		for i, e := range x {
			eachPath(k.index(i), e, fn)
		}
	}
}
