package server

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/api"
)

// settingBootstrap records that the first start has run (its value is the
// default org's uuid, or "config" when the config declared orgs).
const settingBootstrap = "bootstrap"

// Bootstrap is what the first start created, to be shown once.
type Bootstrap struct {
	Org    herald.Org
	APIKey string // "" when nothing was created
}

// applyConfig stores the declared orgs, keys, users and devices
// (idempotently) and, on a first start without any, creates a default org
// and an API key with every scope.
func applyConfig(ctx context.Context, reg herald.Registry, orgs []OrgConfig) (Bootstrap, error) {
	for _, o := range orgs {
		if err := applyOrg(ctx, reg, o); err != nil {
			return Bootstrap{}, err
		}
	}
	done, err := reg.Setting(ctx, settingBootstrap)
	if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		return Bootstrap{}, err
	}
	if done != "" {
		if org, err := reg.Org(ctx, done); err == nil {
			return Bootstrap{Org: org}, nil
		}
		return Bootstrap{}, nil
	}
	if len(orgs) > 0 {
		return Bootstrap{}, reg.PutSetting(ctx, settingBootstrap, "config")
	}
	org := herald.Org{UUID: api.NewUUID(), Name: "default"}
	key := api.NewAPIKey()
	if err := reg.PutOrg(ctx, org); err != nil {
		return Bootstrap{}, err
	}
	if err := reg.PutAPIKey(ctx, herald.APIKey{Hash: herald.HashAPIKey(key), Org: org.UUID,
		Name: "bootstrap", Scopes: herald.AllScopes}); err != nil {
		return Bootstrap{}, err
	}
	if err := reg.PutSetting(ctx, settingBootstrap, org.UUID); err != nil {
		return Bootstrap{}, err
	}
	return Bootstrap{Org: org, APIKey: key}, nil
}

func applyOrg(ctx context.Context, reg herald.Registry, o OrgConfig) error {
	uuid := strings.ToLower(o.UUID)
	if err := reg.PutOrg(ctx, herald.Org{UUID: uuid, Name: o.Name}); err != nil {
		return err
	}
	for _, k := range o.APIKeys {
		err := reg.PutAPIKey(ctx, herald.APIKey{Hash: herald.HashAPIKey(k.Key), Org: uuid, Name: k.Name, Scopes: k.Scopes})
		if err != nil {
			return err
		}
	}
	for _, u := range o.Users {
		if old, err := reg.User(ctx, uuid, u.Name); err == nil &&
			bcrypt.CompareHashAndPassword([]byte(old.PasswordHash), []byte(u.Password)) == nil {
			continue // unchanged: keep the stored hash
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("hash password of %s: %w", u.Name, err)
		}
		if err := reg.PutUser(ctx, herald.User{Org: uuid, Name: u.Name, PasswordHash: string(hash)}); err != nil {
			return err
		}
	}
	for _, d := range o.Devices {
		err := reg.PutDevice(ctx, herald.Device{Org: uuid, UUID: d.UUID, Name: d.Name, Kind: d.Kind, Number: d.Number})
		if err != nil {
			return err
		}
	}
	return nil
}
