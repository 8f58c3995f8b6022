// Package auth turns credentials into principals: API keys (stored
// hashed), and later JWTs and users.
package auth

import (
	"context"

	"github.com/herald-gw/herald"
)

// Keys authenticates API keys against the registry.
type Keys struct {
	Registry herald.Registry
}

// Authenticate returns the principal of an API key: EUNAUTHORIZED for a
// missing or unknown key.
func (k Keys) Authenticate(ctx context.Context, key string) (herald.Principal, error) {
	if key == "" {
		return herald.Principal{}, herald.Errorf(herald.EUNAUTHORIZED, "missing API key (header x-auth-apikey)")
	}
	stored, err := k.Registry.APIKey(ctx, herald.HashAPIKey(key))
	if err != nil {
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			return herald.Principal{}, herald.Errorf(herald.EUNAUTHORIZED, "invalid API key")
		}
		return herald.Principal{}, err
	}
	return herald.Principal{Org: stored.Org, Scopes: stored.Scopes, Credential: herald.KeyCredential(stored.Hash)}, nil
}
