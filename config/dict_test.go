package config

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// representative processes: defaults, everything set, a shell command, a oneshot.
func representative() []Process {
	full := NewProcess("web", "nginx", "-g", "daemon off;")
	full.Args = []string{"-c", "$CONF"}
	full.Cwd = "/srv"
	full.User = "www-data:staff"
	full.Env = map[string]string{"CONF": "/etc/nginx.conf", "EMPTY": ""}
	full.ClearEnv = true
	full.NumProcesses = 3
	full.Restart = RestartOnFailure
	full.SuccessCodes = []int{0, 2, 255}
	full.Backoff = 250 * time.Millisecond
	full.BackoffMax = 90 * time.Second
	full.MaxRestarts = 5
	full.RestartWindow = 2 * time.Minute
	full.OnEnd = OnEndIgnore
	full.After = []string{"db", "migrate"}
	full.Ready = Probe{Kind: ProbeHTTP, Target: "http://127.0.0.1:8080/health?full=1"}
	full.ReadyTimeout = 1500 * time.Microsecond
	full.StopSignal = syscall.SIGQUIT
	full.StopTimeout = 0
	full.RedirectOutput = []string{"stdout"}
	full.RedirectInput = true
	full.CustomStreams = []string{"events", "ctl"}
	full.TTY = true

	shell := NewProcess("clock", "/bin/sh", "-c", "while sleep 1; do date; done")
	shell.Shell = true
	shell.RedirectOutput = nil
	shell.StopSignal = syscall.Signal(36) // RTMIN+2
	shell.Ready = Probe{Kind: ProbeExec, Target: "test -e /tmp/ready"}
	shell.Detach = true

	oneshot := NewProcess("migrate", "./migrate", "up")
	oneshot.Oneshot = true
	oneshot.User = "1000"
	oneshot.StopSignal = syscall.SIGKILL

	probes := NewProcess("probes", "x")
	probes.Ready = Probe{Kind: ProbeFile, Target: "/run/my app/ready"}
	probes2 := NewProcess("probes2", "x")
	probes2.Ready = Probe{Kind: ProbeTCP, Target: "[::1]:5432"}

	health := NewProcess("health", "x")
	health.Ready = Probe{Kind: ProbeLog, Target: `listening on :\d+$`, Regexp: regexp.MustCompile(`listening on :\d+$`)}
	health.Health = Probe{Kind: ProbeHTTP, Target: "http://127.0.0.1:8080/healthz"}
	health.HealthInterval = 2 * time.Second
	health.HealthTimeout = 500 * time.Millisecond
	health.HealthRetries = 5
	health.HealthStart = time.Minute
	health.OnUnhealthy = OnUnhealthyIgnore

	scheduled := NewProcess("backup", "backup", "--all")
	scheduled.Oneshot = true
	scheduled.OnEnd = OnEndIgnore
	scheduled.RunAtStart = true
	scheduled.Schedule, _ = ParseSchedule("0 3 * * 1-5") // a zero Schedule would fail the trip
	scheduled2 := NewProcess("report", "report")
	scheduled2.Oneshot = true
	scheduled2.Schedule, _ = ParseSchedule("@every 90s") // on_end given: shutdown

	return []Process{NewProcess("plain", "sleep", "1"), full, shell, oneshot, probes, probes2, health, scheduled, scheduled2}
}

func TestConfigDictRoundTrip(t *testing.T) {
	for _, p := range representative() {
		t.Run(p.Name, func(t *testing.T) {
			got, err := fromDict(p.ToDict(), testUsers())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("FromDict(ToDict(p)) =\n%+v\nwant\n%+v", got, p)
			}
			// And through JSON, where every number is a float64 and every list []any.
			b, err := json.Marshal(p.ToDict())
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			got, err = fromDict(m, testUsers())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("through JSON =\n%+v\nwant\n%+v", got, p)
			}
		})
	}
}

// TestConfigDictRoundTripLoaded: what Load makes survives the trip, Line aside.
func TestConfigDictRoundTripLoaded(t *testing.T) {
	for _, path := range []string{"testdata/full.toml", "testdata/procfile/Procfile"} {
		cfg, err := load(path, testUsers())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range cfg.Processes {
			got, err := fromDict(p.ToDict(), testUsers())
			if err != nil {
				t.Fatal(err)
			}
			p.Line = 0
			if !reflect.DeepEqual(got, p) {
				t.Errorf("%s: got\n%+v\nwant\n%+v", p.Name, got, p)
			}
		}
	}
}

// TestConfigFromDictSystemUsers goes through the exported FromDict, which resolves users
// against this system: uid 0 exists everywhere.
func TestConfigFromDictSystemUsers(t *testing.T) {
	p := NewProcess("a", "x")
	p.User = "0"
	got, err := FromDict(p.ToDict())
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("got %+v, %v; want %+v", got, err, p)
	}
}

func TestConfigFromDict(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want func() Process
		err  string
	}{
		{name: "minimal, defaults filled", in: map[string]any{"name": "a", "cmd": "prog -x"},
			want: func() Process { return NewProcess("a", "prog", "-x") }},
		{name: "python style: uid, gid, nulls", in: map[string]any{"name": "a", "cmd": []string{"x"}, "uid": 1000, "gid": nil, "cwd": nil, "args": "1 2"},
			want: func() Process {
				p := NewProcess("a", "x")
				p.User, p.Args = "1000", []string{"1", "2"}
				return p
			}},
		{name: "shell string is wrapped", in: map[string]any{"name": "a", "cmd": "echo hi", "shell": true},
			want: func() Process {
				p := NewProcess("a", "/bin/sh", "-c", "echo hi")
				p.Shell = true
				return p
			}},
		{name: "missing name and cmd", in: map[string]any{}, err: "missing name\nmissing cmd"},
		{name: "bad name", in: map[string]any{"name": "a.1", "cmd": "x"},
			err: "name: bad process name: use letters, digits, _ and - (a dot is reserved for instance names such as web.2)"},
		{name: "bad values", in: map[string]any{"name": "a", "cmd": "x", "numprocesses": 1.5, "stop_signal": "NOPE", "frobnicate": true},
			err: "frobnicate: unknown key\nnumprocesses: want an integer, got a float (1.5)\nstop_signal: unknown signal \"NOPE\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fromDict(tt.in, testUsers())
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want\n%s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestConfigProbe(t *testing.T) {
	tests := []struct {
		in   string
		want Probe
		out  string // String(), when it differs from in
	}{
		{in: "none", want: Probe{Kind: "none"}},
		{in: "tcp://127.0.0.1:80", want: Probe{Kind: "tcp", Target: "127.0.0.1:80"}},
		{in: "tcp://[::1]:80/", want: Probe{Kind: "tcp", Target: "[::1]:80"}, out: "tcp://[::1]:80"},
		{in: "http://localhost:8080/health", want: Probe{Kind: "http", Target: "http://localhost:8080/health"}},
		{in: "https://example.com", want: Probe{Kind: "https", Target: "https://example.com"}},
		{in: "file:///run/ready", want: Probe{Kind: "file", Target: "/run/ready"}},
		{in: "file:///run/a%20b", want: Probe{Kind: "file", Target: "/run/a b"}},
		{in: "exec:pg_isready -q", want: Probe{Kind: "exec", Target: "pg_isready -q"}},
		{in: "exec: test -e /x ", want: Probe{Kind: "exec", Target: "test -e /x"}, out: "exec:test -e /x"},
	}
	for _, tt := range tests {
		got, err := ParseProbe(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.in, got, tt.want)
		}
		out := tt.out
		if out == "" {
			out = tt.in
		}
		if got.String() != out {
			t.Errorf("%s: String() = %q, want %q", tt.in, got.String(), out)
		}
	}
	for _, bad := range []string{"", "NONE", "tcp://:80", "tcp://h:0", "tcp://h:80/x", "http://", "http://h:x/", "file:relative", "file://host/x", "exec:", "unix:///s", "127.0.0.1:80"} {
		if p, err := ParseProbe(bad); err == nil {
			t.Errorf("%q: got %+v, want an error", bad, p)
		}
	}
	if (Probe{}).String() != "none" {
		t.Error("the zero Probe is not none")
	}
}

func TestConfigErrorsFormat(t *testing.T) {
	errs := &Errors{List: []Error{
		{File: "b.env", Line: 1, Msg: "x"},
		{File: "Procfile", Line: 9, Msg: "late"},
		{File: "Procfile", Msg: "whole file"},
		{Msg: "no file"},
		{File: "Procfile", Line: 2, Msg: "early"},
	}}
	errs.sort()
	got := strings.Split(errs.Error(), "\n")
	wantLines := []string{"b.env:1: x", "Procfile: whole file", "Procfile:2: early", "Procfile:9: late", "no file"}
	if !reflect.DeepEqual(got, wantLines) {
		t.Errorf("got %q, want %q", got, wantLines)
	}
	var none Errors
	if none.err() != nil {
		t.Error("an empty Errors is not a nil error")
	}
}
