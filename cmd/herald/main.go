// Command herald delivers mini-program subscription messages from NATS
// JetStream to WeChat and Alipay. Run `herald --help` for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// An error may quote a dead letter's or a platform's words.
		fmt.Fprintln(os.Stderr, "herald:", termSafeLines(err.Error()))
		os.Exit(1)
	}
}

// env is what every command may read from its process: the environment and
// the standard streams. Commands never touch os.* directly.
type env struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer

	// server is the NATS server an operator command connected to, redacted,
	// for its errors: "stream not found" should say where.
	server string
}

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && e.server != "" && fromNATS(err) && !strings.Contains(err.Error(), e.server) {
		err = fmt.Errorf("%w (NATS server %s)", err, e.server)
	}
	return err
}

// fromNATS reports whether err is the server's answer, or the lack of one.
func fromNATS(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrNoServers) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, context.DeadlineExceeded)
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "herald",
		Short: "Deliver mini-program subscription messages from NATS JetStream",
		Long: `herald pulls send jobs from NATS JetStream (notify.send.wechat, notify.send.alipay),
enforces shared rate limits and deduplication through Redis, calls the WeChat and
Alipay APIs, retries transient failures and dead-letters permanent ones.`,
		Example: `  herald dev                          # everything in one process, for a first look
  herald worker --config herald.yaml  # one worker replica
  herald dlq stats --since 1h         # why did jobs fail in the last hour?`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "config file (default $HERALD_CONFIG)")
	for _, add := range commands {
		root.AddCommand(add(e))
	}
	return root
}

// commands builds every subcommand; each command's file appends itself in init.
var commands []func(*env) *cobra.Command
