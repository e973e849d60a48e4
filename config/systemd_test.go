package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gaffer/listen"
)

func mustAddr(t *testing.T, s string) listen.Addr {
	t.Helper()
	a, err := listen.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestConfigSystemd: the keys of the systemd protocols load, and survive to_dict/from_dict (also
// through JSON).
func TestConfigSystemd(t *testing.T) {
	cfg, errs := loadString(t, `[process.db]
cmd = "postgres"
ready = "notify"
watchdog = "30s"
[process.web]
cmd = "web"
listen = ["tcp://0.0.0.0:8080", "unix:///run/web.sock", "udp://:5353"]
listen_names = ["http", "control", "dns"]
listen_mode = "0666"
after = ["db"]
[process.plain]
cmd = "x"
listen = ["tcp://[::1]:80", "unix:///run/plain.sock"]
listen_mode = 0o600
`)
	if errs != nil {
		t.Fatal(errs)
	}
	db, web, plain := cfg.Processes[0], cfg.Processes[1], cfg.Processes[2]
	if db.Ready.Kind != ProbeNotify || db.Watchdog != 30*time.Second || db.Listen != nil {
		t.Errorf("db: %+v", db)
	}
	wantAddrs := []listen.Addr{mustAddr(t, "tcp://0.0.0.0:8080"), mustAddr(t, "unix:///run/web.sock"), mustAddr(t, "udp://:5353")}
	if !reflect.DeepEqual(web.Listen, wantAddrs) || !reflect.DeepEqual(web.ListenNames, []string{"http", "control", "dns"}) || web.ListenMode != 0o666 {
		t.Errorf("web: %+v", web)
	}
	if plain.ListenNames != nil || plain.ListenMode != 0o600 {
		t.Errorf("plain: %+v", plain)
	}
	d := web.ToDict()
	if !reflect.DeepEqual(d["listen"], []string{"tcp://0.0.0.0:8080", "unix:///run/web.sock", "udp://:5353"}) || d["listen_mode"] != "0666" || d["watchdog"] != nil {
		t.Errorf("web as a dict: %v", d)
	}
	if d := db.ToDict(); d["ready"] != "notify" || d["watchdog"] != "30s" || d["listen_mode"] != nil || len(d["listen_names"].([]string)) != 0 {
		t.Errorf("db as a dict: %v", d)
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

func TestConfigSystemdErrors(t *testing.T) {
	const a = "[process.a]\ncmd = [\"x\"]\n" // a key added below is on line 3
	for _, tt := range []struct{ name, src, want string }{
		{"zero watchdog", a + "watchdog = \"0s\"\n", "gaffer.toml:3: process.a.watchdog: watchdog must be longer than 0s (leave it out for none)"},
		{"bad watchdog", a + "watchdog = 30\n", `gaffer.toml:3: process.a.watchdog: want a duration string such as "10s", got an integer (30)`},
		{"watchdog with detach", a + "detach = true\nwatchdog = \"1s\"\n", "gaffer.toml:4: process.a.watchdog: watchdog with detach: a detached process is not supervised"},
		{"notify with oneshot", a + "oneshot = true\nready = \"notify\"\n", "gaffer.toml:4: process.a.ready: ready with oneshot: a oneshot is ready when it exits successfully"},
		{"listen not an array", a + "listen = \"tcp://:80\"\n", `gaffer.toml:3: process.a.listen: want an array of strings, got a string ("tcp://:80")`},
		{"bad address", a + "listen = [\n  \"tcp://:80\",\n  \"tcp://localhost:80\",\n]\n",
			`gaffer.toml:5: process.a.listen[1]: address "tcp://localhost:80": "localhost" is not an IP address (names are not resolved; leave it empty for every address)`},
		{"address twice", a + "listen = [\"tcp://:80\", \"tcp://:80\"]\n", "gaffer.toml:3: process.a.listen[1]: tcp://:80 is listed twice"},
		{"relative unix path", a + "listen = [\"unix://web.sock\"]\n", `gaffer.toml:3: process.a.listen[0]: address "unix://web.sock": want unix:///ABSOLUTE/PATH`},
		{"names without listen", a + "listen_names = [\"http\"]\n", "gaffer.toml:3: process.a.listen_names: listen_names without listen"},
		{"names count", a + "listen = [\"tcp://:80\"]\nlisten_names = [\"a\", \"b\"]\n", "gaffer.toml:4: process.a.listen_names: 2 names for 1 listen addresses"},
		{"bad name", a + "listen = [\"tcp://:80\"]\nlisten_names = [\"a:b\"]\n", `gaffer.toml:4: process.a.listen_names[0]: bad name "a:b": 1 to 255 printable ASCII characters, no space or colon`},
		{"mode without unix", a + "listen = [\"tcp://:80\"]\nlisten_mode = \"0660\"\n", "gaffer.toml:4: process.a.listen_mode: listen_mode without a unix:// address in listen"},
		{"bad mode", a + "listen = [\"unix:///run/a.sock\"]\nlisten_mode = \"rw\"\n", `gaffer.toml:4: process.a.listen_mode: want a file mode like "0660" or 0o660, got a string ("rw")`},
		{"zero mode", a + "listen = [\"unix:///run/a.sock\"]\nlisten_mode = \"0\"\n", "gaffer.toml:4: process.a.listen_mode: listen_mode 0000: only root could connect"},
		{"typo", a + "watchdgo = \"1s\"\n", "gaffer.toml:3: process.a.watchdgo: unknown key (did you mean watchdog?)"},
	} {
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
