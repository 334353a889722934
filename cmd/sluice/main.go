// Command sluice is a self-hosted Azure Event Grid whose only state is an
// object store. One binary; `sluice serve --roles ...` picks what it runs.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
		os.Exit(1)
	}
}

// cli is what every command shares: where output goes and the logger built
// from the root flags before any command runs.
type cli struct {
	stdout, stderr io.Writer
	logLevel       string
	log            zerolog.Logger
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr, log: zerolog.Nop()}
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "A self-hosted Azure Event Grid on an object store",
		SilenceErrors: true, // main prints the error once
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Flags parsed fine: from here on errors are not usage mistakes.
			cmd.SilenceUsage = true
			log, err := newLogger(c.stderr, c.logLevel)
			if err != nil {
				return err
			}
			c.log = log
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&c.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	root.AddCommand(
		newServeCmd(c),
		newVersionCmd(c),
		newTopicCmd(c),
		newSubCmd(c),
		newPublishCmd(c),
		newTailCmd(c),
		newDLQCmd(c),
		newBenchCmd(c),
	)
	return root
}

// newLogger logs for humans when w is a terminal and as JSON lines otherwise.
func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", level)
	}
	if f, ok := w.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
