package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when a scheduled oneshot runs: five cron fields (minute hour day-of-month month
// day-of-week) in the local time zone (TZ), or @hourly, @daily, @weekly, @monthly, @yearly,
// @every DURATION. The zero Schedule never runs.
type Schedule struct {
	Spec  string
	sched cron.Schedule
}

// ParseSchedule reads a schedule. It is Kubernetes CronJob's parser (robfig/cron), so the same
// strings mean the same times: ranges, lists, steps, names (JAN, MON), day-of-week 0 and 7 for
// Sunday, and CRON_TZ=ZONE before the fields.
func ParseSchedule(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return Schedule{}, fmt.Errorf("empty schedule")
	}
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || dur < time.Second {
			return Schedule{}, fmt.Errorf("schedule %q: @every wants a duration of at least 1s", spec)
		}
	}
	s, err := cron.ParseStandard(sevenIsSunday(spec))
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %v", spec, err)
	}
	return Schedule{Spec: spec, sched: s}, nil
}

// IsZero reports whether s is no schedule.
func (s Schedule) IsZero() bool { return s.sched == nil }

// Next is the first time after t that s runs, or the zero time when it never does (a date
// such as 30 February).
func (s Schedule) Next(t time.Time) time.Time {
	if s.sched == nil {
		return time.Time{}
	}
	return s.sched.Next(t)
}

// String is the schedule as written.
func (s Schedule) String() string { return s.Spec }

// schedule reads schedule and run_at_start. A scheduled process is a oneshot run at its times: one
// instance, no restarts (the next run is its retry), and by default its end stops nothing.
func (d *decoder) schedule(p *Process, k keyPath, get func(string) (any, keyPath, bool)) {
	v, kk, ok := get("schedule")
	if !ok {
		if _, rk, ok := get("run_at_start"); ok {
			d.errorf(rk, "run_at_start without schedule")
		}
		return
	}
	spec, ok := d.str(kk, v)
	if !ok {
		return
	}
	s, err := ParseSchedule(spec)
	if err != nil {
		d.errorf(kk, "%v", err)
		return
	}
	p.Schedule = s
	if v, rk, ok := get("run_at_start"); ok {
		if b, ok := d.boolean(rk, v); ok {
			p.RunAtStart = b
		}
	}
	if _, _, given := get("on_end"); !given {
		p.OnEnd = OnEndIgnore
	}
	switch {
	case !p.Oneshot:
		d.errorf(kk, "schedule without oneshot = true: only a oneshot runs on a schedule")
	case p.Restart != RestartNever:
		d.errorf(k.with("restart"), "restart = %q with schedule: a scheduled run is not restarted, the next one comes at its time", p.Restart)
	}
	if p.NumProcesses > 1 {
		d.errorf(k.with("numprocesses"), "numprocesses = %d with schedule: a scheduled oneshot runs one instance at a time", p.NumProcesses)
	}
}

// sevenIsSunday rewrites a 7 in the day-of-week field as 0: Vixie cron and crontab(5) take both
// for Sunday, robfig/cron only 0 ("end of range (7) above maximum (6)"). A range up to 7 becomes
// the range up to 6 plus 0 when its step lands on 7 (5-7 is 5-6,0; 1-7/2 is 1-6/2,0). Anything
// it does not understand is left for the parser to report.
func sevenIsSunday(spec string) string {
	fields := strings.Fields(spec)
	first := 0 // robfig takes a time zone before the fields
	if len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		first = 1
	}
	if len(fields)-first != 5 {
		return spec
	}
	dow := fields[first+4]
	items := strings.Split(dow, ",")
	changed := false
	for i, item := range items {
		if r, ok := sevenItem(item); ok {
			items[i], changed = r, true
		}
	}
	if !changed {
		return spec
	}
	fields[first+4] = strings.Join(items, ",")
	return strings.Join(fields, " ")
}

// sevenItem rewrites one list item of the day-of-week field that ends its range at 7.
func sevenItem(item string) (string, bool) {
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepText)
		if err != nil || n < 1 {
			return "", false
		}
		step = n
	}
	lowText, highText, isRange := strings.Cut(rng, "-")
	if !isRange {
		// "7" alone, or "7/2", which robfig reads as 7 up to the maximum: Sunday either way.
		if lowText == "7" {
			return "0", true
		}
		return "", false
	}
	if highText != "7" {
		return "", false
	}
	low, err := strconv.Atoi(lowText)
	if err != nil || low < 0 || low > 7 {
		return "", false
	}
	if low == 7 {
		return "0", true
	}
	out := lowText + "-6"
	if hasStep {
		out += "/" + stepText
	}
	if (7-low)%step == 0 {
		out += ",0"
	}
	return out, true
}
