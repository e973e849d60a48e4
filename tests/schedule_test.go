package tests

// Black-box tests of scheduled oneshots (issue 9): schedule = "@every 1s" or a cron line,
// run_at_start, a run skipped while the previous one still runs, gaffer start NAME, and the
// errors of gaffer check.

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// iss9Never is a cron schedule that does not come during a test: midnight of 1 January.
const iss9Never = "0 0 1 1 *"

// Contract: a oneshot with schedule = "@every 1s" runs again and again, and a gaffer whose only
// process is that job stays up between its runs; the API shows its schedule and next run.
func TestScheduleEveryRuns(t *testing.T) {
	a := iss9Up(t, true, "", `
[process.job]
cmd = "sh -c 'echo run >> {dir}/runs'"
oneshot = true
schedule = "@every 1s"
`, nil)
	out := newIss9Log(a.gafferRun)
	p := a.iss9Proc("job")
	if p.Schedule != "@every 1s" || p.NextRun == nil {
		t.Fatalf("job in the API: %+v; want its schedule and next run", p)
	}
	runs := filepath.Join(a.dir, "runs")
	a.iss9WaitUntil("3 runs", func() bool { return len(iss9Lines(t, runs)) >= 3 })
	i := out.event(-1, "job exited with code 0")
	i = out.event(i, "job started (pid ")
	out.event(i, "job exited with code 0")
	if p := a.iss9Proc("job"); p.NextRun == nil || p.State == "fatal" {
		t.Fatalf("job after its runs: %+v; want a next run", p)
	}
	out.stop()
}

var iss9Skip = regexp.MustCompile(`^job: run of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d skipped: the previous run is still going$`)

// Contract: when a run's time comes while the previous run still goes (a job of 2.5 s every 1 s),
// that run is skipped and reported; the job runs again after the long run ended.
func TestScheduleOverlapSkipped(t *testing.T) {
	a := iss9Up(t, true, "", `
[process.job]
cmd = "sh -c 'echo run >> {dir}/runs; sleep 2.5'"
oneshot = true
schedule = "@every 1s"
`, nil)
	out := newIss9Log(a.gafferRun)
	started := out.event(-1, "job started (pid ")
	skip := out.event(started, "skipped: the previous run is still going")
	if l := strings.TrimPrefix(out.lines[skip], "gaffer | "); !iss9Skip.MatchString(l) {
		t.Fatalf("skip event %q, want %v", l, iss9Skip)
	}
	if i := out.find(started, "gaffer", "job exited"); i >= 0 && i < skip {
		t.Fatalf("the skip came after the run ended:\n%s", out)
	}
	if n := strings.Count(out.String(), "job started"); n != 1 {
		t.Fatalf("%d runs started during the first one:\n%s", n, out)
	}
	ended := out.event(skip, "job exited with code 0")
	out.event(ended, "job started (pid ")
	out.stop()
}

// Contract: a scheduled job runs at start only with run_at_start = true; without it, it waits
// (pending, with its next run) for its time, which does not come in this test; gaffer start NAME
// (POST /v1/processes/NAME/start) runs it now, and the schedule goes on. A gaffer of only such jobs stays up.
func TestScheduleRunAtStartAndStartNow(t *testing.T) {
	a := iss9Up(t, true, "", `
[process.later]
cmd = "sh -c 'echo run >> {dir}/later'"
oneshot = true
schedule = "`+iss9Never+`"
[process.now]
cmd = "sh -c 'echo run >> {dir}/now'"
oneshot = true
schedule = "`+iss9Never+`"
run_at_start = true
`, nil)
	out := newIss9Log(a.gafferRun)
	// Both were due at the same time, at start, if later were due at all.
	out.event(-1, "now exited with code 0")
	if i := out.find(-1, "gaffer", "later started"); i >= 0 {
		t.Fatalf("later ran at start without run_at_start:\n%s", out)
	}
	later := a.iss9Proc("later")
	if later.State != "pending" || later.Pid != 0 || later.ExitCode != nil || later.Schedule != iss9Never || later.NextRun == nil || !later.NextRun.After(time.Now()) {
		t.Fatalf("later before its time: %+v; want pending, never run, with its next run ahead", later)
	}
	now := a.iss9WaitProc("now", "exited", func(p iss9Proc) bool { return p.State == "exited" })
	if now.ExitCode == nil || *now.ExitCode != 0 || now.NextRun == nil {
		t.Fatalf("now after its run at start: %+v; want exit code 0 and its next run", now)
	}
	if n := len(iss9Lines(t, filepath.Join(a.dir, "now"))); n != 1 {
		t.Fatalf("now ran %d times, want once", n)
	}
	if n := len(iss9Lines(t, filepath.Join(a.dir, "later"))); n != 0 {
		t.Fatalf("later ran %d times, want none", n)
	}

	if code, body := a.post("/v1/processes/later/start", nil); code/100 != 2 {
		t.Fatalf("POST /v1/processes/later/start: %d %s", code, body)
	}
	i := out.event(-1, "later started (pid ")
	out.event(i, "later exited with code 0")
	if n := len(iss9Lines(t, filepath.Join(a.dir, "later"))); n != 1 {
		t.Fatalf("later ran %d times after gaffer start, want once", n)
	}
	later = a.iss9WaitProc("later", "exited", func(p iss9Proc) bool { return p.State == "exited" })
	if later.NextRun == nil || !later.NextRun.After(time.Now()) {
		t.Fatalf("later after gaffer start: %+v; want its next run still ahead", later)
	}
	// Nothing runs now, but the schedules do: gaffer is still up.
	select {
	case <-a.done:
		t.Fatalf("gaffer exited (%d) with only scheduled jobs left:\n%s", a.code, out)
	default:
	}
	out.stop()
}

// Contract: gaffer start NAME (which waits until NAME is ready) of a scheduled oneshot runs it now
// and exits 0 when the run succeeded, as a oneshot is ready once it succeeded; it exits 1 when
// the run failed.
func TestScheduleStartCommand(t *testing.T) {
	a := iss9Up(t, true, "", `
[process.good]
cmd = "sh -c 'echo run >> {dir}/good'"
oneshot = true
schedule = "`+iss9Never+`"
[process.bad]
cmd = "sh -c 'echo run >> {dir}/bad; exit 3'"
oneshot = true
schedule = "`+iss9Never+`"
`, nil)
	code, stdout, stderr := ctl(t, a.sock, nil, "start", "bad")
	if code != 1 || !strings.Contains(stderr, "bad") {
		t.Errorf("gaffer start bad (exits 3): exit %d, stdout %q, stderr %q; want exit 1 naming bad", code, stdout, stderr)
	}
	if n := len(iss9Lines(t, filepath.Join(a.dir, "bad"))); n != 1 {
		t.Errorf("bad ran %d times, want once", n)
	}
	code, stdout, stderr = ctl(t, a.sock, nil, "start", "good")
	if code != 0 {
		t.Errorf("gaffer start good (exits 0): exit %d, stdout %q, stderr %q; want exit 0", code, stdout, stderr)
	}
	if n := len(iss9Lines(t, filepath.Join(a.dir, "good"))); n != 1 {
		t.Errorf("good ran %d times, want once", n)
	}
}

// Contract: a failed run of a scheduled job (on_end = "ignore" by default) stops nothing: the job
// runs again at its next time, it is not fatal, and level alive is OK.
func TestScheduleFailedRunKeepsGoing(t *testing.T) {
	a := iss9Up(t, true, "", `
[process.job]
cmd = "sh -c 'echo run >> {dir}/runs; exit 3'"
oneshot = true
schedule = "@every 1s"
[process.web]
cmd = "sleep 1000"
`, nil)
	out := newIss9Log(a.gafferRun)
	i := out.event(-1, "job exited with code 3")
	i = out.event(i, "job started (pid ")
	out.event(i, "job exited with code 3")
	p := a.iss9Proc("job")
	if p.State == "fatal" || p.NextRun == nil {
		t.Fatalf("job after failed runs: %+v; want not fatal, with a next run", p)
	}
	if r := a.iss9Health("alive"); r.status != 200 || !r.OK {
		t.Fatalf("level alive after a failed scheduled run: %d %s", r.status, r.raw)
	}
	if w := a.iss9Proc("web"); w.State != "running" {
		t.Fatalf("web is %s after job failed, want running", w.State)
	}
	a.signal(unix.SIGTERM)
	code := out.rest()
	t.Logf("exit code after SIGTERM: %d", code)
}

// Contract: gaffer check reports a bad schedule with FILE:LINE of its key and exits 2.
func TestScheduleCheckErrors(t *testing.T) {
	for _, tt := range []struct {
		name, toml, want string
	}{
		{"bad cron field", "[process.job]\ncmd = \"true\"\noneshot = true\nschedule = \"61 * * * *\"\n", "gaffer.toml:4:"},
		{"every under 1s", "[process.job]\ncmd = \"true\"\noneshot = true\n\nschedule = \"@every 500ms\"\n", "gaffer.toml:5:"},
		{"not a oneshot", "[process.job]\ncmd = \"true\"\nschedule = \"@every 1s\"\n", "gaffer.toml:3:"},
		{"run_at_start alone", "[process.job]\ncmd = \"true\"\noneshot = true\nrun_at_start = true\n", "gaffer.toml:4:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"gaffer.toml": tt.toml})
			code, stdout, stderr := runGaffer(t, startOpts{dir: dir}, "check")
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("gaffer check: exit %d, stderr %q, stdout %q; want exit 2 and %q", code, stderr, stdout, tt.want)
			}
		})
	}
}
