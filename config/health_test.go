package config

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata" // the test binary's own zone data: the DST test runs on any machine
)

// TestConfigHealthScheduleValid: what the keys of liveness, schedules, drain and reload decode to.
func TestConfigHealthScheduleValid(t *testing.T) {
	const a = "[process.a]\ncmd = [\"x\"]\n"
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, cfg *Config)
	}{
		{"log probe", a + "ready = 'log:listening on port \\d+'\n", func(t *testing.T, cfg *Config) {
			p := cfg.Processes[0]
			if p.Ready.Kind != ProbeLog || p.Ready.Target != `listening on port \d+` || p.Ready.Regexp == nil ||
				!p.Ready.Regexp.MatchString("web listening on port 8080") || p.Ready.String() != `log:listening on port \d+` {
				t.Errorf("ready = %+v", p.Ready)
			}
		}},
		{"max_restarts counts unhealthy restarts", a + "health = \"tcp://127.0.0.1:80\"\nmax_restarts = 2\n", func(t *testing.T, cfg *Config) {
			if p := cfg.Processes[0]; p.MaxRestarts != 2 || p.Restart != RestartNever {
				t.Errorf("%+v", p)
			}
		}},
		{"health with defaults", a + "health = \"tcp://127.0.0.1:80\"\n", func(t *testing.T, cfg *Config) {
			p := cfg.Processes[0]
			if p.Health != (Probe{Kind: ProbeTCP, Target: "127.0.0.1:80"}) || p.HealthInterval != 10*time.Second ||
				p.HealthTimeout != 3*time.Second || p.HealthRetries != 3 || p.HealthStart != 0 || p.OnUnhealthy != OnUnhealthyRestart {
				t.Errorf("%+v", p)
			}
		}},
		{"health with every key", a + "health = \"exec:curl -fs localhost\"\nhealth_interval = \"5s\"\nhealth_timeout = \"1s\"\n" +
			"health_retries = 1\nhealth_start = \"30s\"\non_unhealthy = \"shutdown\"\n", func(t *testing.T, cfg *Config) {
			p := cfg.Processes[0]
			if p.Health != (Probe{Kind: ProbeExec, Target: "curl -fs localhost"}) || p.HealthInterval != 5*time.Second ||
				p.HealthTimeout != time.Second || p.HealthRetries != 1 || p.HealthStart != 30*time.Second || p.OnUnhealthy != OnUnhealthyShutdown {
				t.Errorf("%+v", p)
			}
		}},
		{"health none turns a layer's check off, its keys stay quiet", a + "health = \"none\"\nhealth_interval = \"5s\"\n", func(t *testing.T, cfg *Config) {
			if p := cfg.Processes[0]; p.Health.Kind != ProbeNone {
				t.Errorf("health = %+v", p.Health)
			}
		}},
		{"schedule: on_end defaults to ignore", "[process.backup]\ncmd = \"backup\"\noneshot = true\nschedule = \"*/5 * * * *\"\n", func(t *testing.T, cfg *Config) {
			p := cfg.Processes[0]
			if p.Schedule.String() != "*/5 * * * *" || p.Schedule.IsZero() || p.OnEnd != OnEndIgnore || p.RunAtStart {
				t.Errorf("%+v", p)
			}
		}},
		{"schedule: on_end given stays", "[process.backup]\ncmd = \"backup\"\noneshot = true\nschedule = \"@daily\"\non_end = \"shutdown\"\nrun_at_start = true\n", func(t *testing.T, cfg *Config) {
			p := cfg.Processes[0]
			if p.Schedule.String() != "@daily" || p.OnEnd != OnEndShutdown || !p.RunAtStart {
				t.Errorf("%+v", p)
			}
		}},
		{"drain and reload signal", "[settings]\ndrain = \"5s\"\nreload_signal = \"HUP\"\n" + a, func(t *testing.T, cfg *Config) {
			if cfg.Settings.Drain != 5*time.Second || cfg.Settings.ReloadSignal != syscall.SIGHUP {
				t.Errorf("settings = %+v", cfg.Settings)
			}
		}},
		{"reload signal with SIG and as a number", "[settings]\nreload_signal = \"SIGUSR2\"\n" + a, func(t *testing.T, cfg *Config) {
			if cfg.Settings.ReloadSignal != syscall.SIGUSR2 {
				t.Errorf("reload_signal = %v", cfg.Settings.ReloadSignal)
			}
		}},
		{"reload signal number", "[settings]\nreload_signal = 10\n" + a, func(t *testing.T, cfg *Config) {
			if cfg.Settings.ReloadSignal != syscall.SIGUSR1 {
				t.Errorf("reload_signal = %v", cfg.Settings.ReloadSignal)
			}
		}},
		{"drain and reload default", a, func(t *testing.T, cfg *Config) {
			if cfg.Settings.Drain != 0 || cfg.Settings.ReloadSignal != 0 {
				t.Errorf("settings = %+v", cfg.Settings)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := loadString(t, tt.src)
			if errs != nil {
				t.Fatalf("unexpected errors:\n%s", strings.Join(errs, "\n"))
			}
			tt.check(t, cfg)
		})
	}
}

// TestConfigHealthScheduleErrors: each rule of issue 9's keys, with its file and line.
func TestConfigHealthScheduleErrors(t *testing.T) {
	const a = "[process.a]\ncmd = [\"x\"]\n" // lines 1-2
	const b = "[process.b]\ncmd = [\"x\"]\noneshot = true\n"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"bad log regex", a + "ready = \"log:(unclosed\"\n",
			"gaffer.toml:3: process.a.ready: log probe \"log:(unclosed\": error parsing regexp: missing closing ): `(unclosed`"},
		{"empty log regex", a + "ready = \"log:\"\n", `gaffer.toml:3: process.a.ready: probe "log:": no regular expression after "log:"`},
		{"log probe for health", a + "health = \"log:up\"\n",
			"gaffer.toml:3: process.a.health: a log: probe is for ready only (a line is printed once, health is asked again and again): use a tcp://, http(s)://, file:// or exec: probe"},
		{"notify for health", a + "health = \"notify\"\n", "gaffer.toml:3: process.a.health: notify is for ready only: for liveness over sd_notify use watchdog"},
		{"bad health probe", a + "health = \"tcp://db\"\n", `gaffer.toml:3: process.a.health: tcp probe "tcp://db": want tcp://HOST:PORT`},
		{"log probe with output not captured", a + "ready = \"log:up\"\nredirect_output = []\n",
			"gaffer.toml:3: process.a.ready: a log: probe with redirect_output = []: gaffer does not read this process's output, so no line can match"},
		{"health_interval without health", a + "health_interval = \"5s\"\n", "gaffer.toml:3: process.a.health_interval: health_interval without health"},
		{"on_unhealthy without health", a + "on_unhealthy = \"ignore\"\n", "gaffer.toml:3: process.a.on_unhealthy: on_unhealthy without health"},
		{"zero health_interval", a + "health = \"exec:true\"\nhealth_interval = \"0s\"\n", "gaffer.toml:4: process.a.health_interval: health_interval must be longer than 0s"},
		{"zero health_timeout", a + "health = \"exec:true\"\nhealth_timeout = \"0s\"\n", "gaffer.toml:4: process.a.health_timeout: health_timeout must be longer than 0s"},
		{"zero health_retries", a + "health = \"exec:true\"\nhealth_retries = 0\n", "gaffer.toml:4: process.a.health_retries: want at least 1, got 0"},
		{"negative health_start", a + "health = \"exec:true\"\nhealth_start = \"-1s\"\n", `gaffer.toml:4: process.a.health_start: negative duration "-1s"`},
		{"bad on_unhealthy", a + "health = \"exec:true\"\non_unhealthy = \"restrat\"\n",
			`gaffer.toml:4: process.a.on_unhealthy: unknown value "restrat": want restart, shutdown or ignore (did you mean restart?)`},
		{"health with detach", a + "health = \"exec:true\"\ndetach = true\n", "gaffer.toml:3: process.a.health: health with detach: a detached process is not supervised"},
		{"schedule without oneshot", a + "schedule = \"@hourly\"\n", "gaffer.toml:3: process.a.schedule: schedule without oneshot = true: only a oneshot runs on a schedule"},
		{"bad schedule", b + "schedule = \"61 * * * *\"\n", `gaffer.toml:4: process.b.schedule: schedule "61 * * * *": end of range (61) above maximum (59): 61`},
		{"six fields", b + "schedule = \"0 * * * * *\"\n", `gaffer.toml:4: process.b.schedule: schedule "0 * * * * *": expected exactly 5 fields, found 6: [0 * * * * *]`},
		{"every 0s", b + "schedule = \"@every 0s\"\n", `gaffer.toml:4: process.b.schedule: schedule "@every 0s": @every wants a duration of at least 1s`},
		{"schedule not a string", b + "schedule = 5\n", "gaffer.toml:4: process.b.schedule: want a string, got an integer (5)"},
		{"schedule with restart", b + "schedule = \"@hourly\"\nrestart = \"on-failure\"\n",
			`gaffer.toml:5: process.b.restart: restart = "on-failure" with schedule: a scheduled run is not restarted, the next one comes at its time`},
		{"schedule with instances", b + "schedule = \"@hourly\"\nnumprocesses = 2\n",
			"gaffer.toml:5: process.b.numprocesses: numprocesses = 2 with schedule: a scheduled oneshot runs one instance at a time"},
		{"run_at_start without schedule", a + "run_at_start = true\n", "gaffer.toml:3: process.a.run_at_start: run_at_start without schedule"},
		{"after a scheduled process", a + "after = [\"b\"]\n" + b + "schedule = \"@hourly\"\n",
			"gaffer.toml:3: process.a.after[0]: b is scheduled: dependents are not gated on scheduled runs"},
		{"negative drain", "[settings]\ndrain = \"-5s\"\n" + a, `gaffer.toml:2: settings.drain: negative duration "-5s"`},
		{"reload signal TERM", "[settings]\nreload_signal = \"TERM\"\n" + a, "gaffer.toml:2: settings.reload_signal: SIGTERM stops gaffer: pick another signal, such as HUP or USR1"},
		{"reload signal INT", "[settings]\nreload_signal = \"SIGINT\"\n" + a, "gaffer.toml:2: settings.reload_signal: SIGINT stops gaffer: pick another signal, such as HUP or USR1"},
		{"reload signal QUIT", "[settings]\nreload_signal = 3\n" + a, "gaffer.toml:2: settings.reload_signal: SIGQUIT stops gaffer: pick another signal, such as HUP or USR1"},
		{"reload signal KILL", "[settings]\nreload_signal = \"KILL\"\n" + a,
			"gaffer.toml:2: settings.reload_signal: SIGKILL cannot be a reload signal: gaffer cannot catch it or keeps it for itself"},
		{"reload signal STOP", "[settings]\nreload_signal = \"STOP\"\n" + a,
			"gaffer.toml:2: settings.reload_signal: SIGSTOP cannot be a reload signal: gaffer cannot catch it or keeps it for itself"},
		{"reload signal CHLD", "[settings]\nreload_signal = \"CHLD\"\n" + a,
			"gaffer.toml:2: settings.reload_signal: SIGCHLD cannot be a reload signal: gaffer cannot catch it or keeps it for itself"},
		{"reload signal TSTP", "[settings]\nreload_signal = \"TSTP\"\n" + a,
			"gaffer.toml:2: settings.reload_signal: SIGTSTP is a terminal stop, which gaffer passes on: pick another signal, such as HUP or USR1"},
		{"reload signal unknown", "[settings]\nreload_signal = \"HUPP\"\n" + a, `gaffer.toml:2: settings.reload_signal: unknown signal "HUPP"`},
		{"reload signal out of range", "[settings]\nreload_signal = 65\n" + a, "gaffer.toml:2: settings.reload_signal: signal number 65 out of range 1-64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := loadString(t, tt.src)
			if cfg != nil {
				t.Fatalf("loaded without error, want %q", tt.want)
			}
			if len(errs) != 1 || errs[0] != tt.want {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), tt.want)
			}
		})
	}
}

// TestConfigSchedule: the cron syntax as robfig/cron (Kubernetes CronJob's parser) reads it.
func TestConfigSchedule(t *testing.T) {
	// Wednesday 2026-01-07 10:02:03 UTC.
	from := time.Date(2026, 1, 7, 10, 2, 3, 0, time.UTC)
	at := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		spec string
		want []time.Time // the next runs after from
	}{
		{"*/15 * * * *", []time.Time{at("2026-01-07 10:15"), at("2026-01-07 10:30"), at("2026-01-07 10:45"), at("2026-01-07 11:00")}},
		{"0 9 * * 1-5", []time.Time{at("2026-01-08 09:00"), at("2026-01-09 09:00"), at("2026-01-12 09:00")}},
		{"5,35 1-2 * * *", []time.Time{at("2026-01-08 01:05"), at("2026-01-08 01:35"), at("2026-01-08 02:05"), at("2026-01-08 02:35"), at("2026-01-09 01:05")}},
		{"0 0 * * 0", []time.Time{at("2026-01-11 00:00"), at("2026-01-18 00:00")}},
		{"0 0 * * 7", []time.Time{at("2026-01-11 00:00"), at("2026-01-18 00:00")}}, // 7 is Sunday too
		{"0 0 * * SUN", []time.Time{at("2026-01-11 00:00")}},
		{"0 0 * * 5-7", []time.Time{at("2026-01-09 00:00"), at("2026-01-10 00:00"), at("2026-01-11 00:00"), at("2026-01-16 00:00")}},
		{"0 0 * * 1-7/2", []time.Time{at("2026-01-09 00:00"), at("2026-01-11 00:00"), at("2026-01-12 00:00")}}, // Mon Wed Fri Sun
		{"0 0 * * 2,7", []time.Time{at("2026-01-11 00:00"), at("2026-01-13 00:00")}},
		{"TZ=UTC 0 0 * * 7", []time.Time{at("2026-01-11 00:00")}},
		{"30 6 * JAN,FEB MON", []time.Time{at("2026-01-12 06:30"), at("2026-01-19 06:30"), at("2026-01-26 06:30"), at("2026-02-02 06:30")}},
		{"0 12 1 */6 *", []time.Time{at("2026-07-01 12:00"), at("2027-01-01 12:00")}},
		{"@hourly", []time.Time{at("2026-01-07 11:00"), at("2026-01-07 12:00")}},
		{"@daily", []time.Time{at("2026-01-08 00:00")}},
		{"@weekly", []time.Time{at("2026-01-11 00:00")}},
		{"@monthly", []time.Time{at("2026-02-01 00:00")}},
		{"@yearly", []time.Time{at("2027-01-01 00:00")}},
		{"@every 90s", []time.Time{from.Add(90 * time.Second), from.Add(180 * time.Second)}},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", []time.Time{at("2026-01-08 00:00")}}, // 09:00 in Tokyo is 00:00 UTC
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		if s.String() != tt.spec {
			t.Errorf("%q: String() = %q", tt.spec, s.String())
		}
		next := from
		for i, want := range tt.want {
			next = s.Next(next)
			if !next.Equal(want) {
				t.Errorf("%q: run %d at %v, want %v", tt.spec, i+1, next, want)
				break
			}
		}
	}
	for _, bad := range []string{"", "   ", "* * * *", "0 * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
		"5-1 * * * *", "*/0 * * * *", "@every 0s", "@every 999ms", "@every -1s", "@every", "@fortnightly", "CRON_TZ=Mars/Base 0 * * * *"} {
		if s, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q: got %v, want an error", bad, s)
		}
	}
	// 30 February never comes: Next says so with the zero time (robfig gives up after 5 years).
	never, err := ParseSchedule("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if next := never.Next(from); !next.IsZero() {
		t.Errorf("0 0 30 2 *: next run %v, want none", next)
	}
	if (Schedule{}).Next(from) != (time.Time{}) || !(Schedule{}).IsZero() {
		t.Error("the zero Schedule runs")
	}
}

// TestConfigScheduleDST pins what a local-time schedule does across daylight saving time
// (robfig/cron's Next): a time that does not exist (spring forward) is skipped for that day, and
// a time that exists twice (fall back) runs twice, once in each offset.
func TestConfigScheduleDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin") // from time/tzdata if the machine has none
	if err != nil {
		t.Fatal(err)
	}
	runs := func(spec string, from time.Time, n int) []string {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for range n {
			from = s.Next(from)
			out = append(out, from.Format("01-02 15:04 MST"))
		}
		return out
	}
	// 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that night.
	spring := time.Date(2026, 3, 28, 12, 0, 0, 0, berlin)
	if got, want := runs("30 2 * * *", spring, 2), []string{"03-30 02:30 CEST", "03-31 02:30 CEST"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spring forward, 30 2 * * *: %q, want %q (no run on 03-29)", got, want)
	}
	if got, want := runs("0 * * * *", time.Date(2026, 3, 29, 0, 30, 0, 0, berlin), 3), []string{"03-29 01:00 CET", "03-29 03:00 CEST", "03-29 04:00 CEST"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spring forward, hourly: %q, want %q", got, want)
	}
	// 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happen twice.
	fall := time.Date(2026, 10, 24, 12, 0, 0, 0, berlin)
	if got, want := runs("30 2 * * *", fall, 3), []string{"10-25 02:30 CEST", "10-25 02:30 CET", "10-26 02:30 CET"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fall back, 30 2 * * *: %q, want %q (twice on 10-25)", got, want)
	}
	if got, want := runs("30 1 * * *", fall, 2), []string{"10-25 01:30 CEST", "10-26 01:30 CET"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fall back, 30 1 * * *: %q, want %q (once: 01:30 exists once)", got, want)
	}
}
