package server

import (
	"slices"
	"strings"
	"testing"
)

const testJWTSecret = "0123456789abcdef0123456789abcdef"

func TestLoadConfigJWT(t *testing.T) {
	path := writeConfig(t, `auth:
  jwt_secret: `+testJWTSecret+`
  jwks_url: https://idp.example/.well-known/jwks.json
  jwt_algorithms: [HS256, ES256]
  jwt_issuer: https://idp.example
  jwt_audience: herald
`)
	cfg, err := LoadConfig(path, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Auth.JWT()
	if j.Secret != testJWTSecret || j.JWKSURL != "https://idp.example/.well-known/jwks.json" || !slices.Equal(j.Algorithms, []string{"HS256", "ES256"}) ||
		j.Issuer != "https://idp.example" || j.Audience != "herald" || j.PublicKey != "" {
		t.Fatalf("JWT config %+v", j)
	}
	if !cfg.Auth.JWTEnabled() {
		t.Fatal("JWTEnabled false with a secret")
	}

	// The environment's secret wins over the file's.
	t.Setenv("HERALD_JWT_SECRET", "fedcba9876543210fedcba9876543210")
	if cfg, err = LoadConfig(path, Overrides{}); err != nil || cfg.Auth.JWT().Secret != "fedcba9876543210fedcba9876543210" {
		t.Fatalf("env secret: %v %q", err, cfg.Auth.JWTSecret)
	}
}

func TestLoadConfigNoJWT(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "listen: 127.0.0.1:0\n"), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.JWTEnabled() {
		t.Fatal("JWT enabled without a key")
	}
}

func TestLoadConfigJWTErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"short secret", "auth:\n  jwt_secret: short\n", "auth.jwt_secret must be at least 32 bytes"},
		{"unknown algorithm", "auth:\n  jwt_secret: " + testJWTSecret + "\n  jwt_algorithms: [HS256, XS256]\n", `unknown algorithm "XS256"`},
		{"none", "auth:\n  jwt_secret: " + testJWTSecret + "\n  jwt_algorithms: [none]\n", "never allowed"},
		{"RS256 without key", "auth:\n  jwt_secret: " + testJWTSecret + "\n  jwt_algorithms: [RS256]\n", "RS256 needs auth.jwt_public_key or auth.jwks_url"},
		{"algorithms without key", "auth:\n  jwt_algorithms: [HS256]\n", "no JWT key configured"},
		{"issuer without key", "auth:\n  jwt_issuer: https://idp.example\n", "no JWT key configured"},
		{"bad JWKS URL", "auth:\n  jwks_url: idp.example/jwks\n", "auth.jwks_url"},
		{"missing key file", "auth:\n  jwt_public_key: /nonexistent/key.pem\n", "auth.jwt_public_key"},
		{"bad PEM", "auth:\n  jwt_public_key: |\n    -----BEGIN PUBLIC KEY-----\n    AAAA\n    -----END PUBLIC KEY-----\n", "auth.jwt_public_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.yaml), Overrides{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "short\"") || strings.Contains(err.Error(), testJWTSecret) {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}
