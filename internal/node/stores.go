package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/morax-dev/morax/config"
	"github.com/morax-dev/morax/persistence/meta"
	"github.com/morax-dev/morax/persistence/meta/litemeta"
	"github.com/morax-dev/morax/persistence/meta/pgmeta"
	"github.com/morax-dev/morax/persistence/objstore"
)

// openMeta opens the metadata store cfg names and describes it for the
// log (the PostgreSQL URL with its password redacted).
func openMeta(ctx context.Context, cfg config.Config) (meta.Store, string, error) {
	if cfg.Embedded() {
		s, err := litemeta.Open(ctx, cfg.MetaPath())
		if err != nil {
			return nil, "", fmt.Errorf("open embedded metadata %s: %w", cfg.MetaPath(), err)
		}
		return s, "embedded " + cfg.MetaPath(), nil
	}
	url := cfg.Server.Meta.ServiceURL
	s, err := pgmeta.Open(ctx, url.Reveal())
	if err != nil {
		return nil, "", fmt.Errorf("open PostgreSQL metadata %s: %w", url, err)
	}
	return s, "postgresql " + url.String(), nil
}

// openObjects opens the object store cfg names and describes it for the
// log.
func openObjects(ctx context.Context, cfg config.Config) (objstore.Store, string, error) {
	if cfg.Storage.Scheme == config.SchemeFS {
		s, err := objstore.NewFS(cfg.ObjectsDir())
		if err != nil {
			return nil, "", fmt.Errorf("open object folder %s: %w", cfg.ObjectsDir(), err)
		}
		return s, "fs " + cfg.ObjectsDir(), nil
	}
	sc := s3Config(cfg)
	s, err := objstore.NewS3(ctx, sc)
	if err != nil {
		return nil, "", fmt.Errorf("open S3 bucket %s: %w", sc.Bucket, err)
	}
	return s, fmt.Sprintf("s3 %s/%s", sc.Endpoint, sc.Bucket), nil
}

// resolveNodeID returns the configured node id, or the one persisted in the
// data dir (created on first start), so a node keeps its id across restarts.
func resolveNodeID(cfg config.Config) (string, error) {
	if cfg.Cluster.NodeID != "" {
		return cfg.Cluster.NodeID, nil
	}
	path := cfg.NodeIDPath()
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	id := "node-" + hex.EncodeToString(raw[:])
	// Written aside and renamed, so a crash never leaves a half-written
	// id that the next start would adopt.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := os.Rename(tmp, filepath.Clean(path)); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}
