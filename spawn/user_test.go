package spawn

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixtureUsers reads testdata/passwd and testdata/group on behalf of a caller 4242:4343, who has a
// passwd entry ("caller", home /home/caller).
func fixtureUsers() Users {
	return Users{
		PasswdFile: filepath.Join("testdata", "passwd"),
		GroupFile:  filepath.Join("testdata", "group"),
		CallerUID:  4242,
		CallerGID:  4343,
	}
}

func TestLookup(t *testing.T) {
	noCallerEntry := fixtureUsers()
	noCallerEntry.CallerUID = 4444
	missing := filepath.Join(t.TempDir(), "missing")
	noPasswd := fixtureUsers()
	noPasswd.PasswdFile = missing
	noGroup := fixtureUsers()
	noGroup.GroupFile = missing
	neither := fixtureUsers()
	neither.PasswdFile, neither.GroupFile = missing, missing
	dirPasswd := fixtureUsers()
	dirPasswd.PasswdFile = "testdata" // a directory: unreadable, but not missing

	tests := []struct {
		name    string
		users   Users
		spec    string
		want    Identity
		wantErr string // substring of the error; "" means no error
	}{
		// A name alone: primary gid first, then every group listing the user, in file order,
		// without duplicates.
		{name: "root", spec: "root", want: Identity{UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"}},
		{name: "app (first of two entries)", spec: "app", want: Identity{UID: 1000, GID: 1000, Groups: []uint32{1000, 50, 44}, Home: "/home/app"}},
		{name: "many groups", spec: "multi", want: Identity{UID: 2000, GID: 2000, Groups: []uint32{2000, 3000, 50, 29, 44, 10}, Home: "/home/multi"}},
		{name: "primary also a membership", spec: "prim", want: Identity{UID: 3000, GID: 3000, Groups: []uint32{3000}, Home: "/home/prim"}},
		{name: "0day is a name", spec: "0day", want: Identity{UID: 1234, GID: 1234, Groups: []uint32{1234}, Home: "/home/0day"}},
		{name: "empty home", spec: "nohome", want: Identity{UID: 1500, GID: 1500, Groups: []uint32{1500}, Home: "/"}},
		{name: "caller", spec: "caller", want: Identity{UID: 4242, GID: 4343, Groups: []uint32{4343}, Home: "/home/caller"}},

		// user:group gets exactly that group.
		{name: "user:group", spec: "app:staff", want: Identity{UID: 1000, GID: 50, Groups: []uint32{50}, Home: "/home/app"}},
		{name: "user:gid", spec: "multi:77", want: Identity{UID: 2000, GID: 77, Groups: []uint32{77}, Home: "/home/multi"}},
		{name: "0day:0", spec: "0day:0", want: Identity{UID: 1234, GID: 0, Groups: []uint32{0}, Home: "/home/0day"}},
		{name: "user:0day group", spec: "app:0day", want: Identity{UID: 1000, GID: 1234, Groups: []uint32{1234}, Home: "/home/app"}},

		// Numbers.
		{name: "uid:gid with entry", spec: "1000:1000", want: Identity{UID: 1000, GID: 1000, Groups: []uint32{1000}, Home: "/home/app"}},
		{name: "uid:gid without entry", spec: "4444:5555", want: Identity{UID: 4444, GID: 5555, Groups: []uint32{5555}, Home: "/"}},
		{name: "uid:group name", spec: "4444:audio", want: Identity{UID: 4444, GID: 29, Groups: []uint32{29}, Home: "/"}},
		{name: "uid with entry is the name", spec: "1000", want: Identity{UID: 1000, GID: 1000, Groups: []uint32{1000, 50, 44}, Home: "/home/app"}},
		{name: "uid 0 with entry", spec: "0", want: Identity{UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"}},
		{name: "uid without entry keeps caller gid", spec: "4444", want: Identity{UID: 4444, GID: 4343, Groups: []uint32{4343}, Home: "/"}},
		{name: "largest uid and gid", spec: "2147483646:2147483646", want: Identity{UID: 2147483646, GID: 2147483646, Groups: []uint32{2147483646}, Home: "/"}},
		{name: "uid 65534 without entry", spec: "65534", want: Identity{UID: 65534, GID: 4343, Groups: []uint32{4343}, Home: "/"}},

		// :group keeps the caller's uid and home.
		{name: ":group", spec: ":staff", want: Identity{UID: 4242, GID: 50, Groups: []uint32{50}, Home: "/home/caller"}},
		{name: ":gid", spec: ":77", want: Identity{UID: 4242, GID: 77, Groups: []uint32{77}, Home: "/home/caller"}},
		{name: ":group caller without entry", users: noCallerEntry, spec: ":staff", want: Identity{UID: 4444, GID: 50, Groups: []uint32{50}, Home: "/"}},

		// Missing files.
		{name: "no passwd, uid", users: noPasswd, spec: "4444", want: Identity{UID: 4444, GID: 4343, Groups: []uint32{4343}, Home: "/"}},
		{name: "no passwd, uid 0", users: noPasswd, spec: "0", want: Identity{UID: 0, GID: 4343, Groups: []uint32{4343}, Home: "/"}},
		{name: "no passwd, uid:gid", users: noPasswd, spec: "4444:5555", want: Identity{UID: 4444, GID: 5555, Groups: []uint32{5555}, Home: "/"}},
		{name: "no passwd, :group", users: noPasswd, spec: ":staff", want: Identity{UID: 4242, GID: 50, Groups: []uint32{50}, Home: "/"}},
		{name: "no passwd nor group, uid:gid", users: neither, spec: "1:2", want: Identity{UID: 1, GID: 2, Groups: []uint32{2}, Home: "/"}},
		{name: "no group file, name", users: noGroup, spec: "multi", want: Identity{UID: 2000, GID: 2000, Groups: []uint32{2000}, Home: "/home/multi"}},
		{name: "no passwd, name", users: noPasswd, spec: "app", wantErr: "app"},
		{name: "no group file, group name", users: noGroup, spec: "app:staff", wantErr: "staff"},
		{name: "unreadable passwd, uid", users: dirPasswd, spec: "4444", wantErr: "testdata"},

		// Unknown names are errors, never a fallback to root.
		{name: "unknown user", spec: "nosuchuser", wantErr: `"nosuchuser"`},
		{name: "unknown group", spec: "app:nosuchgroup", wantErr: `"nosuchgroup"`},
		{name: "unknown user with group", spec: "nosuchuser:staff", wantErr: `"nosuchuser"`},
		{name: "unknown :group", spec: ":nosuchgroup", wantErr: `"nosuchgroup"`},
		{name: "malformed uid line is skipped", spec: "broken", wantErr: `"broken"`},
		{name: "malformed gid line is skipped", spec: "badgid", wantErr: `"badgid"`},
		{name: "short line is skipped", spec: "short", wantErr: `"short"`},
		{name: "malformed group line is skipped", spec: "app:bad", wantErr: `"bad"`},
		{name: "short group line is skipped", spec: "app:short", wantErr: `"short"`},
		// Ids are 0-2147483646: 4294967295 is (uid_t)-1, which setuid refuses at start.
		{name: "uid beyond 32 bits", spec: "99999999999", wantErr: "uid 99999999999 is out of range 0-2147483646"},
		{name: "uid -1 as unsigned", spec: "4294967295", wantErr: "uid 4294967295 is out of range 0-2147483646"},
		{name: "uid 2^31-1", spec: "2147483647", wantErr: "uid 2147483647 is out of range 0-2147483646"},
		{name: "gid -1 as unsigned", spec: "app:4294967295", wantErr: "gid 4294967295 is out of range 0-2147483646"},
		{name: ":gid -1 as unsigned", spec: ":4294967295", wantErr: "gid 4294967295 is out of range 0-2147483646"},
		{name: "uid:gid too large", spec: "4444:2147483647", wantErr: "gid 2147483647 is out of range 0-2147483646"},
		{name: "negative is a name", spec: "-1", wantErr: `"-1"`},
		{name: "comment is not a user", spec: "# passwd fixture for spawn/user_test.go", wantErr: "unknown user"},

		// Malformed specs.
		{name: "empty", spec: "", wantErr: "empty"},
		{name: "user:", spec: "app:", wantErr: "empty group"},
		{name: "colon alone", spec: ":", wantErr: "empty"},
		{name: "a:b:c", spec: "a:b:c", wantErr: "a:b:c"},
		{name: "uid:gid:x", spec: "0:0:0", wantErr: "0:0:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.users
			if u == (Users{}) {
				u = fixtureUsers()
			}
			got, err := u.Lookup(tt.spec)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Lookup(%q) = %+v, want an error", tt.spec, got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Lookup(%q) error %q does not contain %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tt.spec, err)
			}
			if got.UID != tt.want.UID || got.GID != tt.want.GID || got.Home != tt.want.Home || !slices.Equal(got.Groups, tt.want.Groups) {
				t.Errorf("Lookup(%q) =\n %+v, want\n %+v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestLookupDoesNotFallBackToRoot(t *testing.T) {
	// Whatever goes wrong with a name, the answer is an error and never a zero (root) identity.
	u := fixtureUsers()
	for _, spec := range []string{"nosuch", "nosuch:0", "app:nosuch", "ROOT", " root", "root "} {
		if id, err := u.Lookup(spec); err == nil {
			t.Errorf("Lookup(%q) = %+v, want an error", spec, id)
		}
	}
}

func TestSystemUsers(t *testing.T) {
	u := SystemUsers()
	if u.PasswdFile != "/etc/passwd" || u.GroupFile != "/etc/group" {
		t.Errorf("SystemUsers() files = %q, %q", u.PasswdFile, u.GroupFile)
	}
	if u.CallerUID != uint32(os.Getuid()) || u.CallerGID != uint32(os.Getgid()) {
		t.Errorf("SystemUsers() caller = %d:%d, want %d:%d", u.CallerUID, u.CallerGID, os.Getuid(), os.Getgid())
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Skip("no /etc/passwd")
	}
	id, err := u.Lookup("root")
	if err != nil {
		t.Fatalf("Lookup(root): %v", err)
	}
	if id.UID != 0 || id.GID != 0 || len(id.Groups) == 0 || id.Groups[0] != 0 {
		t.Errorf("Lookup(root) = %+v, want uid 0 gid 0 with group 0 first", id)
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"0", 0, true},
		{"1000", 1000, true},
		{"007", 7, true},
		{"4294967295", 4294967295, true},
		{"4294967296", 0, false},
		{"", 0, false},
		{"0day", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{" 1", 0, false},
		{"1e3", 0, false},
	}
	for _, tt := range tests {
		got, ok := number(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("number(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLookupRefusesIDsOutOfRangeInFiles(t *testing.T) {
	// An entry of passwd or group with an id setresuid or setgroups would misread is refused too.
	dir := t.TempDir()
	pw, gr := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(pw, []byte("big:x:4294967295:100::/:/bin/sh\nbiggid:x:100:4294967295::/:/bin/sh\nok:x:100:100::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gr, []byte("g:x:100:\nnfs:x:4294967294:ok\nbiggrp:x:2147483647:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := Users{PasswdFile: pw, GroupFile: gr}
	for spec, want := range map[string]string{
		"big":       "user \"big\": uid 4294967295 is out of range 0-2147483646",
		"biggid":    "user \"biggid\": gid 4294967295 is out of range 0-2147483646",
		"ok":        "group \"nfs\" of user \"ok\": gid 4294967294 is out of range 0-2147483646",
		"ok:biggrp": "group \"biggrp\": gid 2147483647 is out of range 0-2147483646",
	} {
		if id, err := u.Lookup(spec); err == nil || err.Error() != want {
			t.Errorf("Lookup(%q) = %+v, %v; want error %q", spec, id, err, want)
		}
	}
}
