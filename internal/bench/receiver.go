package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The benchmark's events carry what the receiver needs in their id:
//
//	<run>.<phase>.<index>.<sent unix ns>
//
// so the no-op receiver finds them with a scan for "id" instead of decoding
// every delivery (it shares the machine's cores with the server it measures).
func eventID(run string, phase int, index int64, sent time.Time) string {
	return run + "." + strconv.Itoa(phase) + "." + strconv.FormatInt(index, 10) + "." + strconv.FormatInt(sent.UnixNano(), 10)
}

// receiver is the no-op webhook endpoint every benchmark subscription
// delivers to: /r/<subscription index>. It answers CloudEvents' abuse
// protection preflight and counts each event once per subscription.
type receiver struct {
	run  string
	srv  *http.Server
	ln   net.Listener
	subs int

	mu     sync.Mutex
	phases map[int]*phaseStats
	bad    int64 // deliveries whose ids it could not read
}

// phaseStats is what the subscriptions received of one phase.
type phaseStats struct {
	seen       [][]bool // per subscription, by event index
	unique     int64
	duplicates int64
	first      time.Time
	last       time.Time
	latencies  []time.Duration // publish sent → delivered, first delivery of each event per subscription
}

func startReceiver(addr, run string, subs int) (*receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: listen on %s: %w (choose another --receiver-addr)", addr, err)
	}
	r := &receiver{run: run, ln: ln, subs: subs, phases: map[int]*phaseStats{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/r/{sub}", r.handle)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// url is the endpoint of subscription i as the server must reach it.
func (r *receiver) url(host string, i int) string {
	_, port, _ := net.SplitHostPort(r.ln.Addr().String())
	return "http://" + net.JoinHostPort(host, port) + "/r/" + strconv.Itoa(i)
}

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	sub, err := strconv.Atoi(req.PathValue("sub"))
	if err != nil || sub < 0 || sub >= r.subs {
		http.Error(w, "unknown subscription", http.StatusNotFound)
		return
	}
	switch req.Method {
	case http.MethodOptions:
		// CloudEvents webhook abuse protection: allow the sender, no rate limit.
		w.Header().Set("WebHook-Allowed-Origin", req.Header.Get("WebHook-Request-Origin"))
		w.Header().Set("WebHook-Allowed-Rate", "*")
		return
	case http.MethodPost:
	default:
		http.Error(w, "POST or OPTIONS", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for rest := body; ; {
		id, after, ok := nextID(rest)
		if !ok {
			break
		}
		rest = after
		phase, index, sent, ok := r.parseID(id)
		if !ok {
			r.bad++
			continue
		}
		r.record(sub, phase, index, sent, now)
	}
}

func (r *receiver) record(sub, phase int, index int64, sent, now time.Time) {
	p := r.phases[phase]
	if p == nil {
		p = &phaseStats{seen: make([][]bool, r.subs), first: now}
		r.phases[phase] = p
	}
	seen := p.seen[sub]
	if index >= int64(len(seen)) {
		grown := make([]bool, max(index+1, 2*int64(len(seen))))
		copy(grown, seen)
		seen = grown
		p.seen[sub] = seen
	}
	p.last = now
	if seen[index] {
		p.duplicates++
		return
	}
	seen[index] = true
	p.unique++
	p.latencies = append(p.latencies, now.Sub(sent))
}

// stats returns a copy of what a phase has received so far.
func (r *receiver) stats(phase int) (unique, duplicates int64, first, last time.Time, lat []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.phases[phase]
	if p == nil {
		return 0, 0, time.Time{}, time.Time{}, nil
	}
	return p.unique, p.duplicates, p.first, p.last, append([]time.Duration(nil), p.latencies...)
}

// missing lists up to n event indexes below total that subscription sub has not received.
func (r *receiver) missing(phase, sub int, total int64, n int) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	var seen []bool
	if p := r.phases[phase]; p != nil {
		seen = p.seen[sub]
	}
	for i := int64(0); i < total && len(out) < n; i++ {
		if i >= int64(len(seen)) || !seen[i] {
			out = append(out, i)
		}
	}
	return out
}

func (r *receiver) parseID(id string) (phase int, index int64, sent time.Time, ok bool) {
	rest, found := strings.CutPrefix(id, r.run+".")
	if !found {
		return 0, 0, time.Time{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return 0, 0, time.Time{}, false
	}
	ph, err1 := strconv.Atoi(parts[0])
	idx, err2 := strconv.ParseInt(parts[1], 10, 64)
	ns, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || idx < 0 {
		return 0, 0, time.Time{}, false
	}
	return ph, idx, time.Unix(0, ns), true
}

var idKey = []byte(`"id"`)

// nextID finds the next "id": "<value>" in a JSON text and returns the value
// and the text after it. The benchmark's events have no other "id" key.
func nextID(b []byte) (id string, rest []byte, ok bool) {
	for {
		i := bytes.Index(b, idKey)
		if i < 0 {
			return "", nil, false
		}
		b = b[i+len(idKey):]
		j := 0
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j >= len(b) || b[j] != ':' {
			continue
		}
		j++
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			continue
		}
		end := bytes.IndexByte(b[j+1:], '"')
		if end < 0 {
			return "", nil, false
		}
		return string(b[j+1 : j+1+end]), b[j+1+end+1:], true
	}
}
