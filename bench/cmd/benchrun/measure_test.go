package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
	}{
		{
			name: "plain",
			stat: "1234 (gateway) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 100 0 0",
			want: 3 * time.Second, // (250+50) ticks of 10 ms
		},
		{
			name: "command with spaces and parentheses",
			stat: "42 (a (weird) name) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0",
			want: 100 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if err != nil || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := parseStatCPU([]byte("1 (x) S 1")); err == nil {
		t.Fatal("parseStatCPU accepted a short line")
	}
}

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat([]byte("123456789 2000 31\n"))
	if err != nil || got != 123456789*time.Nanosecond {
		t.Fatalf("parseSchedstat = %v, %v", got, err)
	}
	if _, err := parseSchedstat([]byte("")); err == nil {
		t.Fatal("parseSchedstat accepted an empty file")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tgateway\nVmPeak:\t 900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	got, err := parseStatus([]byte(status))
	if err != nil || got.rssKiB != 40960 || got.hwmKiB != 51200 {
		t.Fatalf("parseStatus = %+v, %v", got, err)
	}
	if _, err := parseStatus([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("parseStatus accepted a status without VmRSS")
	}
}

func TestParseGoroutineTotal(t *testing.T) {
	got, err := parseGoroutineTotal([]byte("goroutine profile: total 5017\n1 @ 0x1 0x2\n"))
	if err != nil || got != 5017 {
		t.Fatalf("parseGoroutineTotal = %d, %v", got, err)
	}
	if _, err := parseGoroutineTotal([]byte("<html>")); err == nil {
		t.Fatal("parseGoroutineTotal accepted another page")
	}
}

func TestCountEstablished(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:C351 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
   4: 0100007F:C352 0100007F:1F90 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0 0 0 0 0 0
`
	// Port 0x1F90 = 8080: two client sides established; the listener,
	// the server side and the TIME_WAIT entry do not count.
	if got := countEstablished([]byte(tcp), 8080); got != 2 {
		t.Fatalf("countEstablished = %d, want 2", got)
	}
}

// TestProcSelf reads this process's own figures, as the harness reads
// its children's.
func TestProcSelf(t *testing.T) {
	pid := os.Getpid()
	if d, err := cpuTime(pid); err != nil || d <= 0 {
		t.Fatalf("cpuTime(self) = %v, %v", d, err)
	}
	if m, err := readMem(pid); err != nil || m.rssKiB <= 0 || m.hwmKiB < m.rssKiB {
		t.Fatalf("readMem(self) = %+v, %v", m, err)
	}
}
