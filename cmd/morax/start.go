package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/internal/node"
)

func runStart(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("morax start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config-file", "", "TOML config file (default: embedded mode, no file)")
	dataDir := fs.String("data-dir", "", "data directory (overrides data_dir)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*configFile, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "morax: invalid configuration:\n%v\n", err)
		return 2
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	logger := newLogger(cfg.Telemetry.Log, stderr)
	n, err := node.New(ctx, cfg, logger)
	if err != nil {
		logger.Error("node failed to start", "err", err)
		return 1
	}
	if err := n.Run(ctx); err != nil {
		logger.Error("node failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
