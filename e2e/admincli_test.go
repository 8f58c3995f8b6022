package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-gw/herald"
)

// adminConfig is binaryConfig with an admin key.
const adminConfig = binaryConfig + `      - key: "` + keyAdmin + `"
        scopes: [admin]
`

// heraldCLI runs the herald binary with args (and stdin) against the
// server at base with the admin key; it returns the output and whether
// it exited 0.
func heraldCLI(t *testing.T, base, stdin string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(heraldBinary(t), append(args, "--url", base)...)
	cmd.Env = append(cmd.Environ(), "HERALD_API_KEY="+keyAdmin)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func mustCLI(t *testing.T, base, stdin string, args ...string) string {
	t.Helper()
	out, ok := heraldCLI(t, base, stdin, args...)
	if !ok {
		t.Fatalf("herald %s: %s", strings.Join(args, " "), out)
	}
	return out
}

// TestAdminCLI: the herald orgs|keys|users|devices commands as an
// operator runs them against the binary, and declarative config applied
// again on a restart next to what they made.
func TestAdminCLI(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cmd, addr := startBinaryWith(t, dataDir, "127.0.0.1:0", adminConfig)
	base := "http://" + addr
	ts := &testServer{t: t, base: base}

	if out := mustCLI(t, base, "", "orgs", "create", "Globex", "--uuid", "globex"); !strings.Contains(out, "globex  Globex") {
		t.Fatalf("orgs create: %s", out)
	}
	if out := mustCLI(t, base, "", "orgs", "list"); !strings.Contains(out, orgA) || !strings.Contains(out, "Globex") {
		t.Fatalf("orgs list: %s", out)
	}
	out := mustCLI(t, base, "", "keys", "create", "--org", "Globex", "--name", "cams", "--scope", "subscribe,publish")
	secret := regexp.MustCompile(`key: (hk_\S+)`).FindStringSubmatch(out)
	if secret == nil || !strings.Contains(out, "only time") {
		t.Fatalf("keys create: %s", out)
	}
	if status := ts.do("POST", "/api/events", secret[1], []any{alert("cli-1", "cam-9")}, nil); status != http.StatusOK {
		t.Fatalf("publish with the new key: %d", status)
	}
	var keys struct {
		Keys []struct{ ID, Name string }
	}
	if err := json.Unmarshal([]byte(mustCLI(t, base, "", "keys", "list", "--org", "globex", "--json")), &keys); err != nil || len(keys.Keys) != 1 || keys.Keys[0].Name != "cams" {
		t.Fatalf("keys list --json: %+v %v", keys, err)
	}
	if out := mustCLI(t, base, "a long password\n", "users", "create", "bob", "--org", "globex"); !strings.Contains(out, "bob") {
		t.Fatalf("users create: %s", out)
	}
	tokenFor(t, base, "globex/bob", "a long password")
	if out := mustCLI(t, base, "", "users", "list", "--org", "globex"); !strings.Contains(out, "bob") {
		t.Fatalf("users list: %s", out)
	}
	mustCLI(t, base, "", "devices", "create", "cam-9", "--org", "globex", "--name", "Gate", "--kind", "camera", "--number", "3")
	mustCLI(t, base, "", "devices", "update", "cam-9", "--org", "globex", "--name", "North gate")
	if out := mustCLI(t, base, "", "devices", "show", "cam-9", "--org", "globex"); !strings.Contains(out, "North gate  camera  3") {
		t.Fatalf("devices show: %s", out)
	}

	// Refusals are clear and exit non-zero.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"orgs", "show", "nope"}, `no org has the uuid or name "nope"`},
		{[]string{"keys", "create", "--org", "globex", "--scope", "root"}, `unknown scope "root"`},
		{[]string{"users", "create", "eve", "--org", "globex"}, "no password on stdin"},
		{[]string{"keys", "list"}, "no org: give --org"},
	} {
		if out, ok := heraldCLI(t, base, "", c.args...); ok || !strings.Contains(out, c.want) {
			t.Errorf("herald %s: %q (ok %v), want it to fail with %q", strings.Join(c.args, " "), out, ok, c.want)
		}
	}

	mustCLI(t, base, "", "keys", "delete", keys.Keys[0].ID, "--org", "globex")
	if status := ts.do("POST", "/api/events", secret[1], []any{alert("cli-2", "cam-9")}, nil); status != http.StatusUnauthorized {
		t.Fatalf("publish with the deleted key: %d, want 401", status)
	}

	// Declarative config is applied again on a restart, idempotently,
	// beside what the admin API made: the deleted config key is back,
	// Globex and its user stay.
	acmeKeys := mustCLI(t, base, "", "keys", "list", "--org", orgA, "--json")
	mustCLI(t, base, "", "keys", "delete", keyID(t, acmeKeys, keyA), "--org", orgA)
	cmd.Process.Kill()
	cmd.Wait()
	_, addr = startBinaryWith(t, dataDir, "127.0.0.1:0", adminConfig)
	base = "http://" + addr
	ts.base = base
	if again := mustCLI(t, base, "", "keys", "list", "--org", orgA, "--json"); again != acmeKeys {
		t.Fatalf("after a restart the config's keys are\n%s\nwant\n%s", again, acmeKeys)
	}
	if status := ts.do("POST", "/api/events", keyA, []any{alert("cli-3", camA)}, nil); status != http.StatusOK {
		t.Fatalf("the config's key after a restart: %d", status)
	}
	if out := mustCLI(t, base, "", "users", "list", "--org", "Globex"); !strings.Contains(out, "bob") {
		t.Fatalf("after a restart: %s", out)
	}

	mustCLI(t, base, "", "orgs", "delete", "globex")
	if out := mustCLI(t, base, "", "orgs", "list"); strings.Contains(out, "Globex") {
		t.Fatalf("orgs list after delete: %s", out)
	}
}

// keyID finds the id of key in a keys list --json answer.
func keyID(t *testing.T, list, key string) string {
	t.Helper()
	var keys struct{ Keys []struct{ ID string } }
	json.Unmarshal([]byte(list), &keys)
	for _, k := range keys.Keys {
		if k.ID == herald.HashAPIKey(key) {
			return k.ID
		}
	}
	t.Fatalf("key %s not in %s", key, list)
	return ""
}
