package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Process is what the serving process used, read from /proc (Linux).
type Process struct {
	PID          int     `json:"pid"`
	PeakRSSBytes int64   `json:"peakRssBytes"`
	CPUSeconds   float64 `json:"cpuSeconds"`
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

func readProcess(pid int) (Process, error) {
	p := Process{PID: pid}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return p, fmt.Errorf("/proc/%d/status: VmHWM %q: %w", pid, v, err)
			}
			p.PeakRSSBytes = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return p, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return p, fmt.Errorf("/proc/%d/stat: cannot read utime/stime", pid)
	}
	p.CPUSeconds = float64(utime+stime) / clockTicks
	return p, nil
}

// storeCounts is sluice_store_requests_total by "op/result".
type storeCounts map[string]float64

// scrapeStore reads the server's store request counters from /metrics.
func scrapeStore(ctx context.Context, client *http.Client, base, token string) (storeCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s/metrics: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read %s/metrics: %s", base, resp.Status)
	}
	return parseStoreCounts(body), nil
}

// parseStoreCounts picks sluice_store_requests_total{op="…",result="…"} N
// out of a Prometheus text exposition.
func parseStoreCounts(body []byte) storeCounts {
	out := storeCounts{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, "sluice_store_requests_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var op, result string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "op":
				op = v
			case "result":
				result = v
			}
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || op == "" {
			continue
		}
		out[op+"/"+result] += n
	}
	return out
}

// sub returns c - before.
func (c storeCounts) sub(before storeCounts) storeCounts {
	out := storeCounts{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}
