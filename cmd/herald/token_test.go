package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
)

const (
	acmeOrg    = "5f0c6b2e-4d2a-4c1e-9b7a-2a9d8e4f1c30"
	otherOrg   = "0b9e5c1a-7d3f-4a2b-8c6d-1e2f3a4b5c6d"
	tokenTests = "0123456789abcdef0123456789abcdef"
)

// orgRegistry knows the orgs it holds; nothing else is used.
type orgRegistry struct {
	herald.Registry
	orgs []string
}

func (r orgRegistry) Org(_ context.Context, uuid string) (herald.Org, error) {
	if !slices.Contains(r.orgs, uuid) {
		return herald.Org{}, herald.Errorf(herald.ENOTFOUND, "org %q not found", uuid)
	}
	return herald.Org{UUID: uuid}, nil
}

// tokenConfig writes a config with a secret and two orgs, and clears
// HERALD_JWT_SECRET for the test.
func tokenConfig(t *testing.T, secret string) string {
	t.Helper()
	t.Setenv("HERALD_JWT_SECRET", "")
	os.Unsetenv("HERALD_JWT_SECRET")
	text := "orgs:\n  - {uuid: " + acmeOrg + ", name: acme}\n  - {uuid: " + otherOrg + ", name: twin}\n  - {uuid: 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f, name: twin}\n"
	if secret != "" {
		text += "auth:\n  jwt_secret: " + secret + "\n"
	}
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runToken runs `herald token` with args and returns stdout, stderr.
func runToken(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCommand()
	root.SetArgs(append([]string{"token"}, args...))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func verify(t *testing.T, secret, token string) (herald.Principal, time.Time) {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.JWTConfig{Secret: secret}, orgRegistry{orgs: []string{acmeOrg, otherOrg}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	p, exp, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify refused herald token's output: %v", err)
	}
	return p, exp
}

// oneLine returns the token of stdout, failing unless stdout is exactly
// one line.
func oneLine(t *testing.T, stdout string) string {
	t.Helper()
	token, ok := strings.CutSuffix(stdout, "\n")
	if !ok || token == "" || strings.ContainsAny(token, "\n \t") || strings.Count(token, ".") != 2 {
		t.Fatalf("stdout is not one token line: %q", stdout)
	}
	return token
}

func TestToken(t *testing.T) {
	path := tokenConfig(t, tokenTests)
	tests := []struct {
		name   string
		args   []string
		org    string
		scopes []string
		ttl    time.Duration
		note   bool // a note on stderr
	}{
		{"org by name", []string{"--org", "acme", "--user", "alice"}, acmeOrg, []string{"subscribe"}, time.Hour, false},
		{"org by uuid, scopes, ttl", []string{"--org", acmeOrg, "--user", "bob", "--scopes", "subscribe, publish", "--ttl", "2h"}, acmeOrg, []string{"subscribe", "publish"}, 2 * time.Hour, false},
		{"uppercase uuid of a declared org", []string{"--org", strings.ToUpper(acmeOrg), "--user", "bob"}, acmeOrg, []string{"subscribe"}, time.Hour, false},
		{"undeclared uuid", []string{"--org", otherOrg[:9] + "aaaa" + otherOrg[13:], "--user", "c", "--ttl", "8760h"}, "", nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			stdout, stderr, err := runToken(t, append([]string{"--config", path}, tt.args...)...)
			if err != nil {
				t.Fatalf("%v (stderr %q)", err, stderr)
			}
			if tt.note != strings.Contains(stderr, "not declared") {
				t.Fatalf("stderr %q", stderr)
			}
			token := oneLine(t, stdout)
			if tt.org == "" {
				return // the org does not exist, Verify would refuse it
			}
			p, exp := verify(t, tokenTests, token)
			if p.Org != tt.org || p.User != tt.args[3] || !slices.Equal(p.Scopes, tt.scopes) {
				t.Fatalf("principal %+v", p)
			}
			if exp.Before(start.Add(tt.ttl).Add(-time.Second)) || exp.After(time.Now().Add(tt.ttl)) {
				t.Fatalf("expiry %v, want about %v from now", exp, tt.ttl)
			}
		})
	}
}

// The secret may come from the environment alone, as for herald serve.
func TestTokenSecretFromEnv(t *testing.T) {
	tokenConfig(t, "")
	secret := "fedcba9876543210fedcba9876543210"
	t.Setenv("HERALD_JWT_SECRET", secret)
	stdout, _, err := runToken(t, "--org", acmeOrg, "--user", "alice")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, secret, oneLine(t, stdout))
}

func TestTokenErrors(t *testing.T) {
	path := tokenConfig(t, tokenTests)
	noSecret := tokenConfig(t, "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"--config", noSecret, "--data", t.TempDir(), "--org", "acme", "--user", "a"}, "no auth.jwt_secret"},
		{"unknown scope", []string{"--config", path, "--org", "acme", "--user", "a", "--scopes", "subscribe,root"}, `unknown scope "root"`},
		{"empty scopes", []string{"--config", path, "--org", "acme", "--user", "a", "--scopes", " , "}, "no scope"},
		{"zero ttl", []string{"--config", path, "--org", "acme", "--user", "a", "--ttl", "0s"}, "--ttl"},
		{"negative ttl", []string{"--config", path, "--org", "acme", "--user", "a", "--ttl", "-1h"}, "--ttl"},
		{"ttl over a year", []string{"--config", path, "--org", "acme", "--user", "a", "--ttl", "8761h"}, "--ttl"},
		{"unknown org", []string{"--config", path, "--org", "umbrella", "--user", "a"}, `no org named "umbrella"`},
		{"ambiguous org", []string{"--config", path, "--org", "twin", "--user", "a"}, "2 orgs are named"},
		{"no user", []string{"--config", path, "--org", "acme"}, "--user"},
		{"no org", []string{"--config", path, "--user", "a"}, "--org"},
		{"missing config", []string{"--config", filepath.Join(t.TempDir(), "nope.yaml"), "--org", "acme", "--user", "a"}, "nope.yaml"},
		{"argument", []string{"--config", path, "--org", "acme", "--user", "a", "extra"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runToken(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if stdout != "" {
				t.Fatalf("stdout %q on error", stdout)
			}
			if strings.Contains(err.Error(), tokenTests) {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

// The real process: the token alone on stdout and exit status 0, or
// nothing on stdout, the error on stderr and a non-zero status.
func TestTokenProcess(t *testing.T) {
	if os.Getenv("HERALD_TEST_MAIN") == "1" {
		os.Args = append([]string{"herald"}, strings.Fields(os.Getenv("HERALD_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	path := tokenConfig(t, tokenTests)
	run := func(args string) (string, string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTokenProcess$")
		cmd.Env = append(os.Environ(), "HERALD_TEST_MAIN=1", "HERALD_TEST_ARGS="+args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	stdout, stderr, err := run("token --config " + path + " --org acme --user alice --scopes subscribe")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	verify(t, tokenTests, oneLine(t, stdout))

	stdout, stderr, err = run("token --config " + path + " --org acme --user alice --scopes root")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("unknown scope: err %v", err)
	}
	if stdout != "" || !strings.Contains(stderr, `unknown scope "root"`) {
		t.Fatalf("unknown scope: stdout %q, stderr %q", stdout, stderr)
	}
}

// With no secret configured, herald token signs with the one herald
// serve generated and copied to the data dir (--data, as for serve).
func TestTokenGeneratedSecret(t *testing.T) {
	noSecret := tokenConfig(t, "")
	dataDir := t.TempDir()
	generated := "b2Z0ZW4tZ2VuZXJhdGVkLXNlY3JldC1vZi0zMi1ieXRlcw"
	if err := os.WriteFile(filepath.Join(dataDir, "jwt-secret"), []byte(generated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runToken(t, "--config", noSecret, "--data", dataDir, "--org", "acme", "--user", "a")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, generated, oneLine(t, stdout))

	_, _, err = runToken(t, "--config", noSecret, "--data", t.TempDir(), "--org", "acme", "--user", "a")
	if err == nil || !strings.Contains(err.Error(), "herald serve") || !strings.Contains(err.Error(), "auth.jwt_secret") {
		t.Fatalf("without a generated secret: %v, want it to say how to get one", err)
	}
}
