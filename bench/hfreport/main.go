// Command hfreport summarizes hyperfine JSON exports (or bench/spawntime's, which add each run's cpu
// time) taken in several rounds: for each command, the pooled mean and median, the time added over
// a baseline command, and the ratio of that added time to a reference command (gaffer vs tini,
// gaffer exec vs gosu); with cpu times, the median cpu time added and its ratio too.
//
//	hfreport -base true -rows 'tini:tini,gaffer:tini,gaffer exec root:gosu root' round1.json round2.json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

type export struct {
	Results []struct {
		Command string    `json:"command"`
		Times   []float64 `json:"times"`
		CPU     []float64 `json:"cpu"` // bench/spawntime only
	} `json:"results"`
}

type row struct{ name, ref string }

func main() {
	base := flag.String("base", "true", "name of the baseline command (`NAME`, as given to hyperfine -n)")
	rows := flag.String("rows", "", "comma-separated `NAME:REF` pairs: report NAME, with ratios against REF")
	title := flag.String("title", "", "title line printed above the table")
	flag.Parse()
	if err := run(os.Stdout, *title, *base, *rows, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "hfreport: %v\n", err)
		os.Exit(1)
	}
}

func run(w io.Writer, title, base, rowSpec string, files []string) error {
	if len(files) == 0 {
		return errors.New("no hyperfine JSON files given")
	}
	var rs []row
	for _, p := range strings.Split(rowSpec, ",") {
		name, ref, ok := strings.Cut(p, ":")
		if !ok || name == "" || ref == "" {
			return fmt.Errorf("bad -rows entry %q: want NAME:REF", p)
		}
		rs = append(rs, row{name, ref})
	}
	// rounds[i][name] are the times (seconds) of one file; pooled[name] is every round together.
	var rounds []map[string][]float64
	pooled := map[string][]float64{}
	cpu := map[string][]float64{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var e export
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		r := map[string][]float64{}
		for _, res := range e.Results {
			r[res.Command] = res.Times
			pooled[res.Command] = append(pooled[res.Command], res.Times...)
			cpu[res.Command] = append(cpu[res.Command], res.CPU...)
		}
		rounds = append(rounds, r)
	}
	need := []string{base}
	for _, r := range rs {
		need = append(need, r.name, r.ref)
	}
	for _, n := range need {
		if len(pooled[n]) == 0 {
			return fmt.Errorf("command %q is in none of the files", n)
		}
	}
	bMean, bMed := mean(pooled[base]), median(pooled[base])
	if title != "" {
		fmt.Fprintln(w, title)
	}
	haveCPU := len(cpu[base]) > 0
	cpuCell := func(name string) string {
		if !haveCPU || len(cpu[name]) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", (median(cpu[name])-median(cpu[base]))*1e3)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\truns\tmean ms\tmedian ms\t+mean ms\t+median ms\tvs\tx +median\tx +mean\tx total\tx +median by round\t+cpu ms\tx +cpu\t")
	fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", base, len(pooled[base]), bMean*1e3, bMed*1e3)
	for _, r := range rs {
		t, ref := pooled[r.name], pooled[r.ref]
		addMean, addMed := mean(t)-bMean, median(t)-bMed
		refMean, refMed := mean(ref)-bMean, median(ref)-bMed
		var per []string
		for _, rd := range rounds {
			if len(rd[r.name]) == 0 || len(rd[r.ref]) == 0 || len(rd[base]) == 0 {
				continue
			}
			b := median(rd[base])
			per = append(per, fmt.Sprintf("%.2f", ratio(median(rd[r.name])-b, median(rd[r.ref])-b)))
		}
		xcpu := "-"
		if haveCPU && len(cpu[r.name]) > 0 && len(cpu[r.ref]) > 0 {
			b := median(cpu[base])
			xcpu = fmt.Sprintf("%.2f", ratio(median(cpu[r.name])-b, median(cpu[r.ref])-b))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t\n",
			r.name, len(t), mean(t)*1e3, median(t)*1e3, addMean*1e3, addMed*1e3, r.ref,
			ratio(addMed, refMed), ratio(addMean, refMean), ratio(median(t), median(ref)), strings.Join(per, " "),
			cpuCell(r.name), xcpu)
	}
	return tw.Flush()
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
