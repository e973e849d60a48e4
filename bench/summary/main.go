// Command summary prints the cost table of one bench/run.sh: every row of issue 13 (start-up of
// `gaffer --` and `gaffer exec`, executable size, anonymous memory as PID 1, signal forwarding
// latency) with gaffer's figure, the peers' and go-min's from the same run, the ratio the row is
// judged by, the wanted ratio or figure, and whether it is met; gaffer's distance to go-min shows
// what is Go's floor, and depmin's (Go plus gaffer's required dependencies) where it was measured. It reads what startup.sh, size.sh, rss.sh and siglat.sh wrote in DIR.
//
//	summary DIR
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: summary DIR")
		os.Exit(2)
	}
	if err := run(os.Stdout, os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "summary: %v\n", err)
		os.Exit(1)
	}
}

// row is one line of the table.
type row struct {
	what, gaffer, peers, floor, ratio, wanted string
	met                                       bool
	known                                     bool // false: a figure is missing
}

func run(w io.Writer, dir string) error {
	var rows []row
	if st, err := startup(dir); err == nil {
		rows = append(rows, st...)
	} else {
		fmt.Fprintf(os.Stderr, "summary: start-up: %v\n", err)
	}
	if r, err := size(dir); err == nil {
		rows = append(rows, r)
	} else {
		fmt.Fprintf(os.Stderr, "summary: size: %v\n", err)
	}
	if r, err := rss(dir); err == nil {
		rows = append(rows, r)
	} else {
		fmt.Fprintf(os.Stderr, "summary: rss: %v\n", err)
	}
	if r, err := siglat(dir); err == nil {
		rows = append(rows, r...)
	} else {
		fmt.Fprintf(os.Stderr, "summary: siglat: %v\n", err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("nothing to summarize in %s", dir)
	}
	fmt.Fprintln(w, "| what | gaffer | peers | go-min (Go's floor) | ratio | wanted | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		met := "no"
		switch {
		case !r.known:
			met = "?"
		case r.met:
			met = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.what, r.gaffer, r.peers, r.floor, r.ratio, r.wanted, met)
	}
	return nil
}

// pooledTimes reads the rounds matching pattern in dir (spawntime or hyperfine JSON): every run's
// wall time by command, pooled over the rounds.
func pooledTimes(dir, pattern string) (map[string][]float64, error) {
	files, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(files) == 0 {
		return nil, fmt.Errorf("no %s", pattern)
	}
	pooled := map[string][]float64{}
	for _, f := range files {
		var e struct {
			Results []struct {
				Command string    `json:"command"`
				Times   []float64 `json:"times"`
			} `json:"results"`
		}
		if err := readJSON(f, &e); err != nil {
			return nil, err
		}
		for _, r := range e.Results {
			pooled[r.Command] = append(pooled[r.Command], r.Times...)
		}
	}
	if len(pooled["true"]) == 0 {
		return nil, fmt.Errorf("%s: no baseline \"true\"", pattern)
	}
	return pooled, nil
}

// startup reads the rounds of startup.sh: medians of the pooled runs minus /bin/true's. The `--`
// row is the PID-1 set (each command as PID 1 of a new namespace with a private /run, the issue's
// harness) when there is one, then the same on the host; exec runs on the host.
func startup(dir string) ([]row, error) {
	var rows []row
	initRow := func(pooled map[string][]float64, where string) {
		base := median(pooled["true"])
		added := func(name string) float64 { return (median(pooled[name]) - base) * 1e3 }
		for _, n := range []string{"gaffer", "gosu root", "tini", "catatonit", "go-min"} {
			if len(pooled[n]) == 0 {
				return
			}
		}
		g, gosu, m := added("gaffer"), added("gosu root"), added("go-min")
		x := g / gosu
		floor := fmt.Sprintf("%.2f ms (%.2fx gosu; gaffer %.2fx go-min)", m, m/gosu, g/m)
		if len(pooled["depmin"]) > 0 {
			d := added("depmin")
			floor += fmt.Sprintf("; with gaffer's dependencies (depmin) %.2f ms (%.2fx gosu; gaffer %.2fx)", d, d/gosu, g/d)
		}
		rows = append(rows, row{
			what:   fmt.Sprintf("`gaffer -- /bin/true` %s, time added over /bin/true (%.2f ms), median", where, base*1e3),
			gaffer: fmt.Sprintf("%.2f ms", g),
			peers:  fmt.Sprintf("gosu %.2f, tini %.2f, catatonit %.2f", gosu, added("tini"), added("catatonit")),
			floor:  floor,
			ratio:  fmt.Sprintf("%.2fx gosu", x), wanted: "<= 1.5x gosu", met: x <= 1.5, known: true,
		})
	}
	if pooled, err := pooledTimes(dir, "startup-pid1-round*.json"); err == nil {
		initRow(pooled, "as PID 1 (new namespace, private /run)")
	}
	pooled, err := pooledTimes(dir, "startup-round*.json")
	if err != nil {
		return rows, err
	}
	initRow(pooled, "on the host (not PID 1)")
	base := median(pooled["true"])
	added := func(name string) float64 { return (median(pooled[name]) - base) * 1e3 }
	if len(pooled["gaffer exec nobody"]) > 0 && len(pooled["gosu nobody"]) > 0 && len(pooled["go-min exec nobody"]) > 0 {
		g, gosu, m := added("gaffer exec nobody"), added("gosu nobody"), added("go-min exec nobody")
		x := g / gosu
		floor := fmt.Sprintf("%.2f ms (%.2fx gosu; gaffer %.2fx go-min)", m, m/gosu, g/m)
		if len(pooled["depmin exec nobody"]) > 0 {
			// go-min's exec with gaffer's required dependencies linked (bench/depmin).
			d := added("depmin exec nobody")
			floor += fmt.Sprintf("; with gaffer's dependencies (depmin) %.2f ms (%.2fx gosu; gaffer %.2fx)", d, d/gosu, g/d)
		}
		rows = append(rows, row{
			what:   "`gaffer exec --user nobody -- /bin/true`, time added, median",
			gaffer: fmt.Sprintf("%.2f ms", g),
			peers:  fmt.Sprintf("gosu %.2f", gosu),
			floor:  floor,
			ratio:  fmt.Sprintf("%.2fx gosu", x), wanted: "<= 1.2x gosu", met: x <= 1.2, known: true,
		})
	}
	return rows, nil
}

func size(dir string) (row, error) {
	var s map[string]float64
	if err := readJSON(filepath.Join(dir, "size.json"), &s); err != nil {
		return row{}, err
	}
	mb := func(n string) string {
		if v, ok := s[n]; ok {
			return fmt.Sprintf("%.2f MB", v/1e6)
		}
		return "?"
	}
	g := s["gaffer"] / 1e6
	r := row{
		what:   "stripped static binary (MB = 10^6 bytes)",
		gaffer: mb("gaffer"),
		peers:  fmt.Sprintf("gosu %s, catatonit %s", mb("gosu"), mb("catatonit")),
		floor:  mb("go-min"),
		ratio:  "-", wanted: "<= 5 MB", met: g <= 5, known: s["gaffer"] > 0,
	}
	if _, ok := s["gaffer-notls"]; ok {
		r.gaffer += fmt.Sprintf(" (without https probes, -tags gaffer_notls: %s)", mb("gaffer-notls"))
	}
	// depmin is Go plus gaffer's required dependencies (bench/depmin): the floor of gaffer's size.
	over := func(a, b string) string {
		if s[a] > 0 && s[b] > 0 {
			return fmt.Sprintf("; %s +%.2f MB, %.2fx", a, (s[a]-s[b])/1e6, s[a]/s[b])
		}
		return ""
	}
	if _, ok := s["depmin"]; ok {
		r.floor += fmt.Sprintf("; with gaffer's dependencies (depmin) %s%s", mb("depmin"), over("gaffer", "depmin"))
	}
	if _, ok := s["depmin-notls"]; ok {
		r.floor += fmt.Sprintf("; depmin-notls %s%s", mb("depmin-notls"), over("gaffer-notls", "depmin-notls"))
	}
	return r, nil
}

func rss(dir string) (row, error) {
	var res map[string][]map[string]int
	if err := readJSON(filepath.Join(dir, "rss.json"), &res); err != nil {
		return row{}, err
	}
	med := func(name, field string) int {
		var xs []int
		for _, s := range res[name] {
			xs = append(xs, s[field])
		}
		if len(xs) == 0 {
			return 0
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	g := med("gaffer", "RssAnon")
	floor := fmt.Sprintf("%d kB (VmRSS %d kB; gaffer +%d kB anon)", med("go-min", "RssAnon"), med("go-min", "VmRSS"), g-med("go-min", "RssAnon"))
	if d := med("depmin", "RssAnon"); d > 0 {
		// go-min's init with gaffer's required dependencies linked (bench/depmin).
		floor += fmt.Sprintf("; with gaffer's dependencies (depmin) %d kB (gaffer %.2fx)", d, float64(g)/float64(d))
	}
	return row{
		what:   "anonymous RSS (RssAnon) as PID 1 in `--`, one child, idle",
		gaffer: fmt.Sprintf("%d kB (VmRSS %d kB)", g, med("gaffer", "VmRSS")),
		peers:  fmt.Sprintf("tini %d kB, catatonit %d kB, dumb-init %d kB", med("tini", "RssAnon"), med("catatonit", "RssAnon"), med("dumb-init", "RssAnon")),
		floor:  floor,
		ratio:  "-", wanted: "<= 800 kB", met: g > 0 && g <= 800, known: g > 0,
	}, nil
}

func siglat(dir string) ([]row, error) {
	var res struct {
		Summary []struct {
			Name          string
			N, Lost       int
			P50, P99, Max float64
		} `json:"summary"`
	}
	if err := readJSON(filepath.Join(dir, "siglat.json"), &res); err != nil {
		return nil, err
	}
	by := map[string]int{}
	for i, s := range res.Summary {
		by[s.Name] = i
	}
	gi, ok1 := by["gaffer"]
	ti, ok2 := by["tini"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("no gaffer or tini in siglat.json")
	}
	g, t := res.Summary[gi], res.Summary[ti]
	floor := "-"
	if mi, ok := by["go-min"]; ok {
		m := res.Summary[mi]
		floor = fmt.Sprintf("p50 %.0f us (%.2fx tini; gaffer %.2fx go-min)", m.P50, m.P50/t.P50, g.P50/m.P50)
	}
	var peers []string
	for _, n := range []string{"tini", "catatonit", "dumb-init"} {
		if i, ok := by[n]; ok {
			peers = append(peers, fmt.Sprintf("%s %.0f", n, res.Summary[i].P50))
		}
	}
	x := g.P50 / t.P50
	return []row{{
		what:   fmt.Sprintf("SIGUSR1 to the init until the child's (Go) handler runs, p50; lost of %d", g.N+g.Lost),
		gaffer: fmt.Sprintf("%.0f us (p99 %.0f); lost %d", g.P50, g.P99, g.Lost),
		peers:  strings.Join(peers, ", ") + " us",
		floor:  floor,
		ratio:  fmt.Sprintf("%.2fx tini", x), wanted: "<= 1.5x tini, none lost", met: x <= 1.5 && g.Lost == 0, known: true,
	}}, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
