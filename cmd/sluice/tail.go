package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/objectlog"
)

// Values of tail's --from besides a time.
const (
	fromEarliest = "earliest"
	fromLatest   = "latest"
)

// tailFlushEvery bounds how many rows the table holds before it is written,
// so a long drain neither waits nor grows without end.
const tailFlushEvery = 1000

type tailConfig struct {
	Store  string
	From   string
	Follow bool
	Count  int
	Output string

	from time.Time // From as a time, when it is one
}

func (cfg *tailConfig) registerFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&cfg.Store, "store", "", "store URL, as for serve (default $"+envStore+", else "+defaultStore+")")
	f.StringVar(&cfg.From, "from", fromEarliest, "where to start in each partition: "+fromEarliest+", "+fromLatest+" or an RFC 3339 time")
	f.BoolVarP(&cfg.Follow, "follow", "f", false, "wait for new events until interrupted (or -n is reached)")
	f.IntVarP(&cfg.Count, "count", "n", 0, "stop after this many events in all (0: all there are, or no limit with -f)")
	f.StringVarP(&cfg.Output, "output", "o", outputTable, "output format: "+outputTable+" or "+outputJSON+" (one stored event per line)")
}

func (cfg *tailConfig) resolve(getenv func(string) string) {
	if cfg.Store == "" {
		cfg.Store = getenv(envStore)
	}
	if cfg.Store == "" {
		cfg.Store = defaultStore
	}
}

func (cfg *tailConfig) validate() error {
	if cfg.From != fromEarliest && cfg.From != fromLatest {
		t, err := time.Parse(time.RFC3339Nano, cfg.From)
		if err != nil {
			return fmt.Errorf("--from %q: want %s, %s or an RFC 3339 time such as 2025-01-02T15:04:05Z", cfg.From, fromEarliest, fromLatest)
		}
		cfg.from = t
	}
	if cfg.Count < 0 {
		return fmt.Errorf("-n/--count %d: want a positive count, or 0 for no limit", cfg.Count)
	}
	if cfg.Output != outputTable && cfg.Output != outputJSON {
		return fmt.Errorf("-o/--output %q: want %s or %s", cfg.Output, outputTable, outputJSON)
	}
	return nil
}

func newTailCmd(c *cli) *cobra.Command {
	var cfg tailConfig
	cmd := &cobra.Command{
		Use:   "tail <topic>",
		Short: "Print a topic's events, reading the log straight from the store",
		Long: "Print a topic's stored events, read straight from the store (no server needed).\n" +
			"Without -f, every partition is read in turn from --from to its end. With -f, all\n" +
			"partitions are followed at once until SIGINT or SIGTERM. With -o json, standard\n" +
			"output holds exactly one event per line, as stored.",
		Example: "  sluice tail orders --store file:///var/lib/sluice\n" +
			"  sluice tail orders -f --from latest -o json | jq .data",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.resolve(os.Getenv)
			if err := cfg.validate(); err != nil {
				return err
			}
			return tail(cmd.Context(), c, cfg, args[0])
		},
	}
	cfg.registerFlags(cmd)
	return cmd
}

func tail(ctx context.Context, c *cli, cfg tailConfig, topic string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := openStore(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer store.Close()
	t, err := controlplane.New(store, nil).GetTopic(ctx, topic)
	if errors.Is(err, objectlog.ErrNotFound) {
		return fmt.Errorf("topic %q does not exist in store %s", topic, store.URL())
	}
	if err != nil {
		return fmt.Errorf("read topic %q from store %s: %w", topic, store.URL(), err)
	}
	l, err := objectlog.NewLog(store, objectlog.DefaultConfig())
	if err != nil {
		return err
	}
	defer l.Close()

	parts := max(t.Properties.Partitions, 1)
	readers := make([]*objectlog.Reader, parts)
	for p := range readers {
		r, err := l.NewReader(t.Name, p)
		if err != nil {
			return err
		}
		switch {
		case cfg.From == fromLatest:
			err = r.SeekLatest(ctx)
		case !cfg.from.IsZero():
			err = r.SeekTime(ctx, cfg.from)
		default:
			err = r.SeekEarliest(ctx)
		}
		if err != nil {
			return fmt.Errorf("position in %s partition %d: %w", t.Name, p, err)
		}
		r.Follow(cfg.Follow)
		readers[p] = r
	}

	out := newTailPrinter(c.stdout, cfg.Output == outputJSON)
	if cfg.Follow {
		fmt.Fprintf(c.stderr, "following %s (%d partitions) from %s; stop with Ctrl-C\n", t.Name, parts, cfg.From)
		err = follow(ctx, readers, cfg.Count, out)
	} else {
		err = drain(ctx, readers, cfg.Count, out)
	}
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	var skipped int64
	for _, r := range readers {
		skipped += r.Skipped()
	}
	if skipped > 0 {
		fmt.Fprintf(c.stderr, "%d events expired (retention) before they could be read\n", skipped)
	}
	if out.events == 0 && !cfg.Follow {
		fmt.Fprintf(c.stderr, "no events in %s from %s\n", t.Name, cfg.From)
	}
	return nil
}

// drain reads the partitions in turn, each to its end, up to limit events
// in all (0: no limit). An interrupt ends it without error.
func drain(ctx context.Context, readers []*objectlog.Reader, limit int, out *tailPrinter) error {
	for p, r := range readers {
		for limit == 0 || out.events < limit {
			ev, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("read partition %d: %w", p, err)
			}
			if err := out.print(p, ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// partitionEvent is an event and the partition it was read from.
type partitionEvent struct {
	partition int
	ev        objectlog.Event
}

// follow reads every partition in a goroutine of its own and prints what
// they find until ctx ends or limit events (0: no limit) were printed.
func follow(ctx context.Context, readers []*objectlog.Reader, limit int, out *tailPrinter) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	events := make(chan partitionEvent, 64)
	errs := make(chan error, len(readers))
	for p, r := range readers {
		wg.Go(func() {
			for {
				ev, err := r.Next(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("read partition %d: %w", p, err)
					}
					return
				}
				select {
				case events <- partitionEvent{p, ev}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case pe := <-events:
			if err := out.print(pe.partition, pe.ev); err != nil {
				return err
			}
			if limit > 0 && out.events >= limit {
				return nil
			}
			// Write what has arrived before waiting for more.
			if len(events) == 0 {
				if err := out.flush(); err != nil {
					return err
				}
			}
		}
	}
}

// tailPrinter writes events as table rows or as the stored JSON lines.
type tailPrinter struct {
	w       *bufio.Writer
	json    bool
	table   *tabwriter.Writer
	events  int // printed so far
	pending int // rows not yet flushed
}

func newTailPrinter(w io.Writer, asJSON bool) *tailPrinter {
	bw := bufio.NewWriter(w)
	return &tailPrinter{w: bw, json: asJSON, table: newTable(bw)}
}

func (p *tailPrinter) print(partition int, ev objectlog.Event) error {
	if p.json {
		p.w.Write(ev.Data)
		if err := p.w.WriteByte('\n'); err != nil {
			return err
		}
	} else {
		if p.events == 0 {
			row(p.table, "PARTITION", "OFFSET", "TIME", "TYPE", "ID", "SOURCE", "SUBJECT")
		}
		var m map[string]json.RawMessage
		_ = json.Unmarshal(ev.Data, &m) // a malformed event shows as dashes
		row(p.table, strconv.Itoa(partition), strconv.FormatInt(ev.Offset, 10),
			member(m, "time", "eventTime"), member(m, "type", "eventType"), member(m, "id"),
			member(m, "source", "topic"), member(m, "subject"))
	}
	p.events++
	p.pending++
	if p.pending >= tailFlushEvery {
		return p.flush()
	}
	return nil
}

func (p *tailPrinter) flush() error {
	p.pending = 0
	if err := p.table.Flush(); err != nil {
		return err
	}
	return p.w.Flush()
}

// member returns the first of the names m has, as a string cell: strings
// unquoted, other values as JSON, and control characters (tabs and
// newlines would break the table) replaced.
func member(m map[string]json.RawMessage, names ...string) string {
	for _, n := range names {
		raw, ok := m[n]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		return strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	return ""
}
