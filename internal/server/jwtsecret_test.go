package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-gw/herald/internal/inmem"
)

func TestTokenKeysGenerated(t *testing.T) {
	ctx := context.Background()
	reg := inmem.New(inmem.Config{})
	logger := slog.New(slog.DiscardHandler)
	nodeA, nodeB := Config{DataDir: t.TempDir()}, Config{DataDir: t.TempDir()}

	jwtA, signA, err := tokenKeys(ctx, nodeA, reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if len(signA) < 32 || jwtA.Secret != string(signA) {
		t.Fatalf("generated secret of %d bytes, verifier's %q", len(signA), jwtA.Secret)
	}
	info, err := os.Stat(filepath.Join(nodeA.DataDir, JWTSecretFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the data dir's copy: %v, %v", info, err)
	}
	if copied, err := ReadJWTSecretFile(nodeA.DataDir); err != nil || copied != string(signA) {
		t.Fatalf("the copy holds %q, %v", copied, err)
	}
	// Another node on the same engine, and a restart, get the same one.
	_, signB, err := tokenKeys(ctx, nodeB, reg, logger)
	if err != nil || string(signB) != string(signA) {
		t.Fatalf("another node's secret differs: %v", err)
	}
	if _, again, _ := tokenKeys(ctx, nodeA, reg, logger); string(again) != string(signA) {
		t.Fatal("a restart generated another secret")
	}

	// A configured secret wins, and the copy of the generated one goes.
	nodeA.Auth.JWTSecret = strings.Repeat("k", 32)
	jwt, sign, err := tokenKeys(ctx, nodeA, reg, logger)
	if err != nil || string(sign) != nodeA.Auth.JWTSecret || jwt.Secret != nodeA.Auth.JWTSecret {
		t.Fatalf("configured secret: %q, %v", sign, err)
	}
	if _, err := os.Stat(filepath.Join(nodeA.DataDir, JWTSecretFile)); !os.IsNotExist(err) {
		t.Fatalf("the generated secret's copy is still there: %v", err)
	}
	// Only a public key: herald verifies but cannot sign.
	nodeB.Auth.JWKSURL = "https://idp.example.com/jwks"
	if jwt, sign, err := tokenKeys(ctx, nodeB, reg, logger); err != nil || sign != nil || jwt.Secret != "" {
		t.Fatalf("public keys only: sign %q, secret %q, %v", sign, jwt.Secret, err)
	}
}

func TestTokenKeysRefusesAShortSetting(t *testing.T) {
	ctx := context.Background()
	reg := inmem.New(inmem.Config{})
	if err := reg.PutSetting(ctx, settingJWTSecret, "short"); err != nil {
		t.Fatal(err)
	}
	_, _, err := tokenKeys(ctx, Config{DataDir: t.TempDir()}, reg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "fewer than") {
		t.Fatalf("a 5-byte secret: %v", err)
	}
}
