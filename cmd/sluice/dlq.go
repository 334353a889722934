package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/apierr"
	"github.com/sluicehq/sluice/controlplane"
	"github.com/sluicehq/sluice/dispatch"
	"github.com/sluicehq/sluice/objectlog"
	"github.com/sluicehq/sluice/schemas"
)

// dlqConfig is the flags of `dlq list` and `dlq show`.
type dlqConfig struct {
	Store  string
	Output string
	Since  string
	Count  int

	since time.Time // Since as a time
}

func (cfg *dlqConfig) resolve(getenv func(string) string) {
	// The same rule as tail's: --store, else $SLUICE_STORE, else the default.
	tc := tailConfig{Store: cfg.Store}
	tc.resolve(getenv)
	cfg.Store = tc.Store
}

func (cfg *dlqConfig) validate() error {
	if cfg.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, cfg.Since)
		if err != nil {
			return fmt.Errorf("--since %q: want an RFC 3339 time such as 2025-01-02T15:04:05Z", cfg.Since)
		}
		cfg.since = t
	}
	if cfg.Count < 0 {
		return fmt.Errorf("-n/--count %d: want a positive count, or 0 for no limit", cfg.Count)
	}
	if cfg.Output != outputTable && cfg.Output != outputJSON {
		return fmt.Errorf("-o/--output %q: want %s or %s", cfg.Output, outputTable, outputJSON)
	}
	return nil
}

func newDLQCmd(c *cli) *cobra.Command {
	cfg := &dlqConfig{}
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List and show a subscription's dead-lettered events, reading the store directly",
		Long: "Read a subscription's dead letters straight from the store (no server needed): from\n" +
			"sluice's own store, or from the subscription's StorageBucket dead-letter destination\n" +
			"if it has one. Each dead-letter object holds one or more records: the event as the\n" +
			"subscription receives it, plus deadLetterReason, deliveryAttempts, lastDeliveryOutcome,\n" +
			"lastHttpStatusCode, publishTime and lastDeliveryAttemptTime.",
		// Runnable, so that an unknown subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&cfg.Store, "store", "", "store URL, as for serve (default $"+envStore+", else "+defaultStore+")")
	cmd.AddCommand(newDLQListCmd(c, cfg), newDLQShowCmd(c, cfg))
	return cmd
}

func newDLQListCmd(c *cli, cfg *dlqConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list <topic> <subscription>",
		Short: "List a subscription's dead letters, oldest first",
		Long: "List a subscription's dead letters, oldest first: one row per record, with the key of\n" +
			"the object that holds it (give it to `dlq show`). With -o json, standard output holds\n" +
			"exactly one record per line, as stored.",
		Example: "  sluice dlq list orders audit --store file:///var/lib/sluice\n" +
			"  sluice dlq list orders audit --since 2025-01-02T00:00:00Z -o json | jq .deadLetterReason",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.resolve(os.Getenv)
			if err := cfg.validate(); err != nil {
				return err
			}
			return dlqList(cmd.Context(), c, cfg, args[0], args[1])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.Output, "output", "o", outputTable, "output format: "+outputTable+" or "+outputJSON+" (one stored record per line)")
	f.StringVar(&cfg.Since, "since", "", "only dead letters written at or after this RFC 3339 time")
	f.IntVarP(&cfg.Count, "count", "n", 0, "stop after this many records (0: all)")
	return cmd
}

func newDLQShowCmd(c *cli, cfg *dlqConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "show <topic> <subscription> <key>",
		Short: "Print the records of one dead-letter object, indented",
		Long: "Print the records of one dead-letter object as an indented JSON array. The key is as\n" +
			"`dlq list` shows it (yyyy/mm/dd/hh/<ulid>.json), the full object key, or just the ULID.",
		Example: "  sluice dlq show orders audit 2025/01/02/15/01JGJ8Z3K4M5N6P7Q8R9S0T1V2.json",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.resolve(os.Getenv)
			return dlqShow(cmd.Context(), c, cfg, args[0], args[1], args[2])
		},
	}
}

// dlqStore opens the store that holds the subscription's dead letters:
// its StorageBucket dead-letter destination if it has one, else sluice's
// own store. where names it for messages.
func dlqStore(ctx context.Context, c *cli, storeURL, topic, sub string) (store *objectlog.Store, where string, err error) {
	if err := schemas.ValidateTopicName(topic); err != nil {
		return nil, "", fmt.Errorf("topic %q: %w", topic, err)
	}
	if err := schemas.ValidateSubscriptionName(sub); err != nil {
		return nil, "", fmt.Errorf("subscription %q: %w", sub, err)
	}
	own, err := openStore(ctx, storeURL)
	if err != nil {
		return nil, "", err
	}
	s, err := controlplane.New(own, time.Now).GetSubscription(ctx, topic, sub, false)
	if err != nil {
		defer own.Close()
		// Not found: the registry's own words say which of the two.
		var ae *apierr.Error
		if errors.As(err, &ae) && errors.Is(err, objectlog.ErrNotFound) {
			return nil, "", fmt.Errorf("%s in store %s", ae.Message, own.URL())
		}
		return nil, "", fmt.Errorf("read subscription %q of topic %q from store %s: %w", sub, topic, own.URL(), err)
	}
	dl := s.Properties.DeadLetterDestination
	switch {
	case dl != nil && dl.EndpointType == schemas.DeadLetterStorageBucket && dl.Properties.URL != "":
		own.Close()
		store, err := openStore(ctx, dl.Properties.URL)
		if err != nil {
			return nil, "", fmt.Errorf("subscription %q dead-letters to its own bucket: %w", sub, err)
		}
		return store, store.URL() + " (the subscription's dead-letter destination)", nil
	case dl != nil && dl.EndpointType == schemas.DeadLetterNone:
		fmt.Fprintf(c.stderr, "subscription %q has dead-lettering turned off (endpointType %s): its undeliverable events are dropped; showing what the store kept from before\n",
			sub, schemas.DeadLetterNone)
	}
	return own, own.URL(), nil
}

// errDLQLimit ends a listing once -n records are printed.
var errDLQLimit = errors.New("limit reached")

func dlqList(ctx context.Context, c *cli, cfg *dlqConfig, topic, sub string) error {
	store, where, err := dlqStore(ctx, c, cfg.Store, topic, sub)
	if err != nil {
		return err
	}
	defer store.Close()

	w := bufio.NewWriter(c.stdout)
	table := newTable(w)
	prefix := dispatch.DeadLetterPrefix(topic, sub)
	printed := 0
	err = dispatch.ListDeadLettersSince(ctx, store, topic, sub, cfg.since, func(key string, recs []json.RawMessage) error {
		written := ""
		if t, ok := dispatch.DeadLetterKeyTime(key); ok {
			written = t.Format(time.RFC3339)
		}
		for _, rec := range recs {
			if cfg.Output == outputJSON {
				var line bytes.Buffer
				if err := json.Compact(&line, rec); err != nil {
					return fmt.Errorf("%s: %w", key, err)
				}
				line.WriteByte('\n')
				if _, err := w.Write(line.Bytes()); err != nil {
					return err
				}
			} else {
				if printed == 0 {
					row(table, "TIME", "KEY", "REASON", "ATTEMPTS", "STATUS", "EVENT ID", "EVENT TYPE")
				}
				var m map[string]json.RawMessage
				_ = json.Unmarshal(rec, &m) // a malformed record shows as dashes
				row(table, written, strings.TrimPrefix(key, prefix),
					member(m, "deadLetterReason"), member(m, "deliveryAttempts"), member(m, "lastHttpStatusCode"),
					member(m, "id"), member(m, "type", "eventType"))
			}
			printed++
			if cfg.Count > 0 && printed >= cfg.Count {
				return errDLQLimit
			}
		}
		return nil
	})
	if errors.Is(err, errDLQLimit) {
		err = nil
	}
	if ferr := dlqFlush(table, w); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if printed == 0 {
		since := ""
		if !cfg.since.IsZero() {
			since = " since " + cfg.since.Format(time.RFC3339Nano)
		}
		fmt.Fprintf(c.stderr, "no dead letters of %s/%s%s in %s\n", topic, sub, since, where)
	}
	return nil
}

// dlqFlush writes out the table, then the buffer under it.
func dlqFlush(table interface{ Flush() error }, w *bufio.Writer) error {
	if err := table.Flush(); err != nil {
		return err
	}
	return w.Flush()
}

func dlqShow(ctx context.Context, c *cli, cfg *dlqConfig, topic, sub, ref string) error {
	store, where, err := dlqStore(ctx, c, cfg.Store, topic, sub)
	if err != nil {
		return err
	}
	defer store.Close()
	key, err := dispatch.DeadLetterKey(topic, sub, ref)
	if err != nil {
		return err
	}
	recs, err := dispatch.ReadDeadLetters(ctx, store, key)
	if errors.Is(err, objectlog.ErrNotFound) {
		return fmt.Errorf("no dead-letter object %s in %s (`sluice dlq list %s %s` shows the keys)", key, where, topic, sub)
	}
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	_, err = io.WriteString(c.stdout, string(out)+"\n")
	return err
}
