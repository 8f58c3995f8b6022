package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
	"github.com/herald-gw/herald/internal/server"
)

// maxTokenTTL is the longest lifetime herald token issues.
const maxTokenTTL = 365 * 24 * time.Hour

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// tokenCommand is `herald token`.
type tokenCommand struct {
	configPath string
	dataDir    string
	org        string
	user       string
	ttl        time.Duration
	scopes     string
	now        func() time.Time
	stdout     io.Writer
	stderr     io.Writer
}

func newTokenCommand() *cobra.Command {
	c := &tokenCommand{now: time.Now}
	cmd := &cobra.Command{
		Use:   "token --org ORG --user USER",
		Short: "Print a signed JWT (HS256) for a user of an org",
		Long: `Print a JWT signed (HS256) for clients of token-authenticated dialects.
The secret is auth.jwt_secret from the config file, then HERALD_JWT_SECRET, as
for herald serve; with neither, it is the secret herald serve generated at its
first start and copied to the data dir (--data, default ./herald-data).
--org is the org's UUID or its name in the config's orgs.

The token is the only thing printed on stdout, so TOKEN=$(herald token …) works.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c.stdout, c.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return c.Run(cmd.Context(), args)
		},
	}
	cmd.Flags().StringVar(&c.configPath, "config", "", "YAML config file")
	cmd.Flags().StringVar(&c.dataDir, "data", "", "data directory herald serve uses, for its generated secret (default ./herald-data)")
	cmd.Flags().StringVar(&c.org, "org", "", "org UUID, or the name of an org in the config (required)")
	cmd.Flags().StringVar(&c.user, "user", "", "user name, the token's sub (required)")
	cmd.Flags().DurationVar(&c.ttl, "ttl", time.Hour, "lifetime of the token, at most 8760h (a year)")
	cmd.Flags().StringVar(&c.scopes, "scopes", herald.ScopeSubscribe, "comma-separated scopes: subscribe, publish, admin")
	return cmd
}

// Run prints the token.
func (c *tokenCommand) Run(_ context.Context, _ []string) error {
	if c.org == "" || c.user == "" {
		return errors.New("token: --org and --user are required")
	}
	if c.ttl <= 0 || c.ttl > maxTokenTTL {
		return fmt.Errorf("token: --ttl must be more than 0 and at most %s, not %s", maxTokenTTL, c.ttl)
	}
	var scopes []string
	for s := range strings.SplitSeq(c.scopes, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !herald.ValidScope(s) {
			return fmt.Errorf("token: unknown scope %q (%s)", s, strings.Join(herald.AllScopes, ", "))
		}
		scopes = append(scopes, s)
	}
	if len(scopes) == 0 {
		return errors.New("token: --scopes names no scope")
	}
	cfg, err := server.LoadConfig(c.configPath, server.Overrides{DataDir: c.dataDir})
	if err != nil {
		return err
	}
	secret, err := signingSecret(cfg)
	if err != nil {
		return err
	}
	org, err := c.resolveOrg(cfg)
	if err != nil {
		return err
	}
	token, err := auth.Issue([]byte(secret), org, c.user, scopes, c.ttl, c.now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(c.stdout, token)
	return err
}

// signingSecret returns the configured HS256 secret or, with no JWT key
// configured, the one herald serve generated into the data dir.
func signingSecret(cfg server.Config) (string, error) {
	if cfg.Auth.JWTSecret != "" {
		return cfg.Auth.JWTSecret, nil
	}
	if cfg.Auth.JWTEnabled() {
		return "", errors.New("token: only a public key is configured (auth.jwt_public_key or auth.jwks_url): herald cannot sign; set auth.jwt_secret, or issue tokens with the key's owner")
	}
	secret, err := server.ReadJWTSecretFile(cfg.DataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("token: no auth.jwt_secret configured and no generated secret in %s: start herald serve once with this data dir (--data), or set auth.jwt_secret (config file or HERALD_JWT_SECRET)",
			filepath.Join(cfg.DataDir, server.JWTSecretFile))
	}
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return secret, nil
}

// resolveOrg returns the UUID of --org: a declared org's UUID or name, or
// any UUID (orgs may also be created at run time, like the default org).
func (c *tokenCommand) resolveOrg(cfg server.Config) (string, error) {
	var byName []string
	for _, o := range cfg.Orgs {
		if strings.EqualFold(o.UUID, c.org) {
			return o.UUID, nil
		}
		if o.Name == c.org {
			byName = append(byName, o.UUID)
		}
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return "", fmt.Errorf("token: %d orgs are named %q (%s): give the UUID", len(byName), c.org, strings.Join(byName, ", "))
	case uuidPattern.MatchString(c.org):
		fmt.Fprintf(c.stderr, "herald token: org %s is not declared in the config; the token works only if the org exists\n", c.org)
		return c.org, nil
	}
	return "", fmt.Errorf("token: no org named %q in the config, and it is not a UUID (herald serve prints the UUID of the org it created at first start)", c.org)
}
