package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/config"
	"github.com/eddyrt/eddy/internal/functions/redisstore"
	"github.com/eddyrt/eddy/internal/functions/secrets"
)

// buildVault opens the functions' secrets when cfg has a secrets_key: in
// Redis with a cluster (changes notify the functions topic, on which every
// node reloads the engine and its vault), else in the data dir. Without a
// key it returns nil: ctx.secrets is empty and storing secrets is refused.
func buildVault(cfg config.Config, rb *redisbroker.Broker, log *slog.Logger) (*secrets.Vault, error) {
	if cfg.SecretsKey == "" {
		return nil, nil
	}
	var store secrets.Store
	if rb != nil {
		store = secrets.NewRedisStore(rb, redisstore.Topic)
	} else {
		fs, err := secrets.NewFileStore(filepath.Join(cfg.DataDir, "functions"))
		if err != nil {
			return nil, fmt.Errorf("secrets store in data_dir %s: %w", cfg.DataDir, err)
		}
		store = fs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := secrets.New(ctx, cfg.SecretsKey, store)
	var skipped *secrets.SkippedError
	if errors.As(err, &skipped) {
		log.Error("functions secrets", "err", err)
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("functions secrets: %w", err)
	}
	return v, nil
}
