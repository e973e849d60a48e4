package config

import (
	"fmt"
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
	s, err := cron.ParseStandard(spec)
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
