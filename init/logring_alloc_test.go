package pid1

import (
	"bytes"
	"fmt"
	"testing"
)

// TestLogRingBusyAddDoesNotAllocate: a process that writes without pause has each read of its
// output added to its ring; the ring reuses the arrays it evicts, so the relay's reads allocate
// nothing (an allocation per read kept the garbage collector running and halved the relay's
// throughput), and the tail is still the latest output.
func TestLogRingBusyAddDoesNotAllocate(t *testing.T) {
	r := newLogRing("web", 256<<10)
	chunks := make([][]byte, 4)
	for i := range chunks {
		// Reads of about 64 KiB, as a busy stream's are, of different lengths.
		chunks[i] = bytes.Repeat([]byte(fmt.Sprintf("%02d%s\n", i, bytes.Repeat([]byte{'x'}, 1020))), 60+i)
	}
	for i := range 16 { // fill the ring, so that every add evicts
		r.add("out", chunks[i%len(chunks)])
	}
	i := 0
	if n := testing.AllocsPerRun(200, func() { r.add("out", chunks[i%len(chunks)]); i++ }); n > 0 {
		t.Errorf("%.1f allocations per add of a busy stream, want 0", n)
	}
	if r.size > r.max {
		t.Errorf("ring holds %d bytes, limit %d", r.size, r.max)
	}
	r.add("out", []byte("last\n"))
	if got := lineTexts(t, r, "", 2); len(got) != 2 || got[1] != "out:last" || got[0][:6] != "out:0"+fmt.Sprint((i-1)%len(chunks)) {
		t.Errorf("tail: %q", got)
	}
}
