package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/dispatch"
)

// newSubSeekCmd moves a subscription's cursors: replay from a time or the
// start of retention, or skip to the tail.
func newSubSeekCmd(c *cli, cfg *clientConfig) *cobra.Command {
	var at, to string
	cmd := &cobra.Command{
		Use:   "seek <topic> <name> (--time <RFC 3339> | --offset earliest|latest)",
		Short: "Replay a subscription from a time or from the start of retention, or skip it to the tail",
		Long: "Move every partition cursor of one subscription: to the first event at or after --time,\n" +
			"to the earliest event retention kept (--offset earliest), or past the last one (--offset latest).\n" +
			"Delivery continues from there at once; other subscriptions are not touched.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body map[string]string
			switch {
			case at != "" && to != "":
				return errors.New("give --time or --offset, not both")
			case at != "":
				if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
					return fmt.Errorf("--time %q: want an RFC 3339 time, like 2026-11-25T10:00:00Z", at)
				}
				body = map[string]string{"time": at}
			case to == "earliest" || to == "latest":
				body = map[string]string{"position": to}
			case to != "":
				return fmt.Errorf("--offset %q: want earliest or latest", to)
			default:
				return errors.New("say where to: --time <RFC 3339> or --offset earliest|latest")
			}
			api, err := cfg.client(os.Getenv)
			if err != nil {
				return err
			}
			a, err := api.do(cmd.Context(), apiRequest{method: http.MethodPost, path: subPath(args[0], args[1]) + "/seek", body: body})
			if err != nil {
				return err
			}
			if cfg.Output == outputJSON {
				return printJSON(c.stdout, a.body)
			}
			var got struct{ Value []dispatch.PartitionPosition }
			if err := a.decode(&got); err != nil {
				return err
			}
			tw := newTable(c.stdout)
			row(tw, "PARTITION", "FROM", "TO")
			for _, p := range got.Value {
				from := "-"
				if p.Previous != nil {
					from = strconv.FormatInt(*p.Previous, 10)
				}
				row(tw, strconv.Itoa(p.Partition), from, strconv.FormatInt(p.Cursor, 10))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			where := at
			if where == "" {
				where = to
			}
			_, err = fmt.Fprintf(c.stdout, "Moved the cursors of %s/%s to %s; delivery goes on from there.\n", args[0], args[1], where)
			return err
		},
	}
	cmd.Flags().StringVar(&at, "time", "", "replay from the first event at or after this RFC 3339 time")
	cmd.Flags().StringVar(&to, "offset", "", "earliest (replay everything retained) or latest (skip to the tail)")
	return cmd
}

// printPositions prints where each partition of a subscription stands.
func printPositions(w io.Writer, pos []dispatch.PartitionPosition) error {
	var behind int64
	for _, p := range pos {
		behind += p.Behind
	}
	if _, err := fmt.Fprintf(w, "\nDelivery: %d events behind\n", behind); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "PARTITION", "CURSOR", "TAIL", "BEHIND", "WORKER")
	for _, p := range pos {
		holder := p.Holder
		if holder == "" {
			holder = "-"
		}
		row(tw, strconv.Itoa(p.Partition), strconv.FormatInt(p.Cursor, 10), strconv.FormatInt(p.Tail, 10), strconv.FormatInt(p.Behind, 10), holder)
	}
	return tw.Flush()
}
